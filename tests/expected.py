"""What the tests expect of the pipeline, shared by local and Kubeflow tests."""

# Every component of the default pipeline (no --extra-examples).
COMPONENTS = frozenset(
    {
        "ImportSchemaGen",
        "MnistExampleGen",
        "StatisticsGen",
        "ExampleValidator",
        "AnomalyGate",
        "Transform",
        "Trainer",
        "LatestRelease",
        "Evaluator",
        "TFLiteCandidate",
        "TFLiteEvaluator",
        "ServingCheck",
        "ErrorGallery",
        "DataProfile",
        "ReleaseManifest",
        "ModelCardGen",
        "Pusher",
    }
)
