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

# With --spans-dir: the listing, the two new-data checks and the new-data Evaluator.
SPAN_COMPONENTS = COMPONENTS | {"SpanListing", "DriftCheck", "LabelCheck", "SpanEvaluator"}
