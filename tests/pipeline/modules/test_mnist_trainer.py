"""The Keras model, its config plumbing and the serving signature helpers."""

import json

import numpy as np
import pytest
import tensorflow as tf

from contract import artifacts, features
from pipeline.config import TrainerConfig
from pipeline.modules.trainer import mnist_trainer

IMAGE_XF = features.transformed_name(features.IMAGE_KEY)


def test_trainer_uses_tf_keras_not_keras3():
    mnist_trainer._check_legacy_keras()
    assert tf.keras.__name__.startswith("tf_keras")


def test_model_has_the_configured_dense_layers_and_softmax_output():
    model = mnist_trainer.build_keras_model((7, 5), learning_rate=1e-3)
    dense = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)]
    assert [layer.units for layer in dense] == [7, 5, features.NUM_CLASSES]
    assert dense[-1].activation is tf.keras.activations.softmax
    probabilities = model({IMAGE_XF: tf.random.uniform((3, features.NUM_PIXELS))}).numpy()
    assert probabilities.shape == (3, features.NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_model_learns_a_separable_toy_problem():
    tf.keras.utils.set_random_seed(0)
    model = mnist_trainer.build_keras_model((16,), learning_rate=1e-2)
    images = np.zeros((200, features.NUM_PIXELS), np.float32)
    labels = np.arange(200) % 2
    images[labels == 1, :10] = 1.0
    model.fit({IMAGE_XF: images}, labels, epochs=20, verbose=0)
    _, accuracy = model.evaluate({IMAGE_XF: images}, labels, verbose=0)
    assert accuracy == 1.0


def test_trainer_config_survives_the_custom_config_round_trip():
    config = TrainerConfig(hidden_units=(64, 32), max_epochs=3, seed=7)
    custom_config = json.loads(json.dumps(config.to_custom_config()))
    assert TrainerConfig.from_custom_config(custom_config) == config


def test_unknown_trainer_setting_is_an_error():
    with pytest.raises(TypeError):
        TrainerConfig.from_custom_config({"hidden_unit": [50]})


class _WeightsPerEpoch(tf.keras.callbacks.Callback):
    """Records the model's weights at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_training_ends_with_the_best_epochs_weights_not_the_last(tmp_path):
    # Eval labels agree with the train labels for 3 in 4 examples: eval loss
    # falls while the model learns, then rises as it grows confident on the
    # quarter it must get wrong, so the last epoch is worse than the best.
    tf.keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).uniform(0, 0.1, (200, features.NUM_PIXELS))
    labels = np.arange(200) % 2
    images[labels == 1, :20] = 1.0
    eval_labels = labels.copy()
    eval_labels[::4] = 1 - eval_labels[::4]
    train = ({IMAGE_XF: images.astype(np.float32)}, labels)
    evaluation = ({IMAGE_XF: images.astype(np.float32)}, eval_labels)
    model = mnist_trainer.build_keras_model((8,), learning_rate=3e-3)
    weights_per_epoch = _WeightsPerEpoch()
    callbacks = mnist_trainer.training_callbacks(
        TrainerConfig(early_stopping_patience=3), str(tmp_path)
    )

    history = model.fit(
        *train,
        validation_data=evaluation,
        epochs=30,
        batch_size=32,
        callbacks=[*callbacks, weights_per_epoch],
        verbose=0,
    )

    eval_losses = history.history["val_loss"]
    best_epoch = int(np.argmin(eval_losses))
    assert 0 < best_epoch < len(eval_losses) - 1, eval_losses
    assert eval_losses[-1] > eval_losses[best_epoch], "the last epoch must be worse"
    assert len(eval_losses) < 30, "training stops early, after `patience` worse epochs"
    eval_loss_after_fit, _ = model.evaluate(*evaluation, batch_size=32, verbose=0)
    np.testing.assert_allclose(eval_loss_after_fit, eval_losses[best_epoch], rtol=1e-5)
    saved = weights_per_epoch.weights
    for restored, best in zip(model.get_weights(), saved[best_epoch], strict=True):
        np.testing.assert_array_equal(restored, best)
    assert not np.array_equal(model.get_weights()[0], saved[-1][0])


def test_shift_augmentation_moves_digits_but_keeps_labels_and_shape():
    image = np.zeros((features.IMAGE_HEIGHT, features.IMAGE_WIDTH), np.float32)
    image[10:18, 12:16] = 1.0
    batch = {IMAGE_XF: tf.constant(np.tile(image.reshape(1, -1), (64, 1)))}
    labels = tf.range(64)
    augment = mnist_trainer.make_shift_augmentation(0.08, seed=1)
    moved, same_labels = augment(batch, labels)
    moved = moved[IMAGE_XF].numpy()
    assert moved.shape == (64, features.NUM_PIXELS)
    np.testing.assert_array_equal(same_labels.numpy(), labels.numpy())
    assert moved.min() >= 0.0 and moved.max() <= 1.0
    changed = (np.abs(moved - image.reshape(1, -1)).sum(axis=1) > 1.0).mean()
    assert changed > 0.5, "most digits should have moved"
    # Shifts of at most ~2 px keep the whole 8x4 stroke inside the image.
    np.testing.assert_allclose(moved.sum(axis=1), image.sum(), atol=0.5)


def test_dropout_is_added_after_each_hidden_layer():
    model = mnist_trainer.build_keras_model((8, 8), learning_rate=1e-3, dropout_rate=0.1)
    dropouts = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dropout)]
    assert [layer.rate for layer in dropouts] == [0.1, 0.1]


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    config = TrainerConfig(
        learning_rate=6e-3, min_learning_rate=1e-5, warmup_epochs=2, max_epochs=12
    )
    rates = [mnist_trainer.cosine_learning_rate(config, epoch) for epoch in range(12)]
    assert rates[0] == pytest.approx(2e-3) and rates[1] == pytest.approx(4e-3)
    assert rates[2] == pytest.approx(6e-3), "the peak right after warm-up"
    assert all(later < earlier for earlier, later in zip(rates[2:-1], rates[3:], strict=True))
    assert rates[-1] == pytest.approx(1e-5), "the floor at the last epoch"


@pytest.mark.parametrize(
    ("schedule", "callback_type"),
    [
        ("cosine", tf.keras.callbacks.LearningRateScheduler),
        ("plateau", tf.keras.callbacks.ReduceLROnPlateau),
    ],
)
def test_the_configured_schedule_is_among_the_callbacks(tmp_path, schedule, callback_type):
    callbacks = mnist_trainer.training_callbacks(TrainerConfig(lr_schedule=schedule), str(tmp_path))
    assert sum(isinstance(c, callback_type) for c in callbacks) == 1
    assert any(isinstance(c, tf.keras.callbacks.EarlyStopping) for c in callbacks)


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="lr_schedule 'linear'"):
        mnist_trainer.learning_rate_callback(TrainerConfig(lr_schedule="linear"))


def test_training_record_keeps_each_epoch_and_the_best_one(tmp_path, caplog):
    tf.keras.utils.set_random_seed(0)
    config = TrainerConfig(max_epochs=4, warmup_epochs=1, learning_rate=1e-2)
    model = mnist_trainer.build_keras_model((8,), config.learning_rate)
    images = np.random.RandomState(0).rand(64, features.NUM_PIXELS).astype(np.float32)
    labels = np.arange(64) % 10
    callbacks = mnist_trainer.training_callbacks(config, str(tmp_path))
    with caplog.at_level("INFO", logger=mnist_trainer.PROGRESS_LOGGER):
        history = model.fit(
            {IMAGE_XF: images},
            labels,
            validation_data=({IMAGE_XF: images}, labels),
            epochs=config.max_epochs,
            callbacks=callbacks,
            verbose=0,
        )
    record = mnist_trainer.training_record(history, callbacks)
    assert record["epochs_run"] == 4 and record["max_epochs"] == 4
    losses = record["metrics"]["val_loss"]
    assert record["best_epoch"] == losses.index(min(losses)) + 1
    assert len(record["metrics"]["learning_rate"]) == 4
    assert "lr" not in record["metrics"]
    epochs = [r.training_epoch["epoch"] for r in caplog.records if hasattr(r, "training_epoch")]
    assert epochs == [1, 2, 3, 4]
    mnist_trainer.write_history(record, str(tmp_path))
    assert artifacts.read_history(str(tmp_path)) == record
    assert artifacts.read_history(str(tmp_path / "nowhere")) is None


def _released(tmp_path, hidden_units, version=7):
    """A Keras model saved as run_fn saves it, with its manifest, as WarmStartModel copies it."""
    model = mnist_trainer.build_keras_model(hidden_units, learning_rate=1e-3)
    path = tmp_path / "base" / "Format-Serving"
    model.save(str(path), save_format="tf", save_traces=False)
    manifest = path / "assets.extra" / "release.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"version": version, "model_fingerprint": "ab" * 32}))
    return model, str(path)


def test_a_warm_start_copies_the_released_weights_and_records_the_release(tmp_path):
    released, path = _released(tmp_path, (8, 4))
    tf.keras.utils.set_random_seed(1)
    fresh = mnist_trainer.build_keras_model((8, 4), learning_rate=1e-3)
    assert not np.array_equal(fresh.get_weights()[0], released.get_weights()[0])

    record = mnist_trainer.warm_start_from(path, fresh)

    assert record == {"from_version": 7, "model_fingerprint": "ab" * 32}
    for copied, original in zip(fresh.get_weights(), released.get_weights(), strict=True):
        np.testing.assert_array_equal(copied, original)


def test_without_a_release_a_warm_start_trains_from_scratch_and_says_so(tmp_path, caplog):
    tf.keras.utils.set_random_seed(1)
    fresh = mnist_trainer.build_keras_model((8,), learning_rate=1e-3)
    before = fresh.get_weights()
    empty = tmp_path / "base" / "Format-Serving"  # LatestRelease before the first release

    with caplog.at_level("WARNING"):
        record = mnist_trainer.warm_start_from(str(empty), fresh)

    assert record["from_version"] is None and "trained from scratch" in record["note"]
    assert "no release to start from yet, training from scratch" in caplog.text
    for kept, original in zip(fresh.get_weights(), before, strict=True):
        np.testing.assert_array_equal(kept, original)
    assert mnist_trainer.warm_start_from(None, fresh) is None, "no --warm-start: no record"


def test_a_release_of_another_architecture_is_a_clear_error(tmp_path):
    _, path = _released(tmp_path, (8, 4))
    other = mnist_trainer.build_keras_model((16,), learning_rate=1e-3)
    with pytest.raises(ValueError, match="train once without --warm-start"):
        mnist_trainer.warm_start_from(path, other)


def test_the_warm_start_schedule_is_short_with_no_warm_up():
    config = TrainerConfig(warm_start_epochs=3, warm_start_learning_rate=5e-4)
    warm = config.for_warm_start()
    assert (warm.max_epochs, warm.learning_rate, warm.warmup_epochs) == (3, 5e-4, 0)
    rates = [mnist_trainer.cosine_learning_rate(warm, epoch) for epoch in range(3)]
    assert rates[0] == pytest.approx(5e-4) and rates == sorted(rates, reverse=True)
    assert rates[-1] == pytest.approx(warm.min_learning_rate)
