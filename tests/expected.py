"""What the tests expect of the pipeline, shared by local and Kubeflow tests."""

# Every component of the default pipeline (no --extra-examples), resolver aside.
COMPONENTS = frozenset(
    {
        "ImportSchemaGen",
        "MnistExampleGen",
        "StatisticsGen",
        "ExampleValidator",
        "AnomalyGate",
        "Transform",
        "Trainer",
        "Evaluator",
        "Pusher",
    }
)
RESOLVER = "latest_blessed_model_resolver"
