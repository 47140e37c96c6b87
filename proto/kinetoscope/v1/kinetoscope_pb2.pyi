from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    QUEUED: _ClassVar[JobState]
    RUNNING: _ClassVar[JobState]
    SUCCEEDED: _ClassVar[JobState]
    FAILED: _ClassVar[JobState]
    CANCELLED: _ClassVar[JobState]

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_QUEUED: _ClassVar[TaskState]
    TASK_RUNNING: _ClassVar[TaskState]
    TASK_DONE: _ClassVar[TaskState]
    TASK_FAILED: _ClassVar[TaskState]
    TASK_CANCELLED: _ClassVar[TaskState]
JOB_STATE_UNSPECIFIED: JobState
QUEUED: JobState
RUNNING: JobState
SUCCEEDED: JobState
FAILED: JobState
CANCELLED: JobState
TASK_STATE_UNSPECIFIED: TaskState
TASK_QUEUED: TaskState
TASK_RUNNING: TaskState
TASK_DONE: TaskState
TASK_FAILED: TaskState
TASK_CANCELLED: TaskState

class Tensor(_message.Message):
    __slots__ = ("shape", "dtype", "data")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    data: bytes
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class TensorChunk(_message.Message):
    __slots__ = ("name", "shape", "dtype", "offset", "total_bytes", "data")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    offset: int
    total_bytes: int
    data: bytes
    def __init__(self, name: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., offset: _Optional[int] = ..., total_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class InputDeclaration(_message.Message):
    __slots__ = ("name", "shape", "kind", "has_range", "low", "high")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HAS_RANGE_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    name: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    kind: str
    has_range: bool
    low: float
    high: float
    def __init__(self, name: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., kind: _Optional[str] = ..., has_range: _Optional[bool] = ..., low: _Optional[float] = ..., high: _Optional[float] = ...) -> None: ...

class InputInfo(_message.Message):
    __slots__ = ("name", "shape", "kind", "layout", "low", "high", "inferred")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    INFERRED_FIELD_NUMBER: _ClassVar[int]
    name: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    kind: str
    layout: str
    low: float
    high: float
    inferred: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., kind: _Optional[str] = ..., layout: _Optional[str] = ..., low: _Optional[float] = ..., high: _Optional[float] = ..., inferred: _Optional[_Iterable[str]] = ...) -> None: ...

class Parity(_message.Message):
    __slots__ = ("max_abs_err", "max_rel_err")
    MAX_ABS_ERR_FIELD_NUMBER: _ClassVar[int]
    MAX_REL_ERR_FIELD_NUMBER: _ClassVar[int]
    max_abs_err: float
    max_rel_err: float
    def __init__(self, max_abs_err: _Optional[float] = ..., max_rel_err: _Optional[float] = ...) -> None: ...

class AxisValues(_message.Message):
    __slots__ = ("axes",)
    class AxesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    AXES_FIELD_NUMBER: _ClassVar[int]
    axes: _containers.ScalarMap[str, float]
    def __init__(self, axes: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Layer(_message.Message):
    __slots__ = ("name", "node", "op_type", "shape", "axes", "channels", "inputs", "streams", "receptive_field", "stride")
    class ReceptiveFieldEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AxisValues
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AxisValues, _Mapping]] = ...) -> None: ...
    class StrideEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AxisValues
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AxisValues, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    OP_TYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    AXES_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    RECEPTIVE_FIELD_FIELD_NUMBER: _ClassVar[int]
    STRIDE_FIELD_NUMBER: _ClassVar[int]
    name: str
    node: str
    op_type: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    axes: str
    channels: int
    inputs: _containers.RepeatedScalarFieldContainer[str]
    streams: str
    receptive_field: _containers.MessageMap[str, AxisValues]
    stride: _containers.MessageMap[str, AxisValues]
    def __init__(self, name: _Optional[str] = ..., node: _Optional[str] = ..., op_type: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., axes: _Optional[str] = ..., channels: _Optional[int] = ..., inputs: _Optional[_Iterable[str]] = ..., streams: _Optional[str] = ..., receptive_field: _Optional[_Mapping[str, AxisValues]] = ..., stride: _Optional[_Mapping[str, AxisValues]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("id", "name", "inputs", "layer_count", "parity", "bn_folded", "bn_remaining", "outputs", "class_names", "metadata", "imported_at")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    LAYER_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARITY_FIELD_NUMBER: _ClassVar[int]
    BN_FOLDED_FIELD_NUMBER: _ClassVar[int]
    BN_REMAINING_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    inputs: _containers.RepeatedCompositeFieldContainer[InputInfo]
    layer_count: int
    parity: Parity
    bn_folded: int
    bn_remaining: int
    outputs: _containers.RepeatedScalarFieldContainer[str]
    class_names: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    imported_at: float
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[InputInfo, _Mapping]]] = ..., layer_count: _Optional[int] = ..., parity: _Optional[_Union[Parity, _Mapping]] = ..., bn_folded: _Optional[int] = ..., bn_remaining: _Optional[int] = ..., outputs: _Optional[_Iterable[str]] = ..., class_names: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., imported_at: _Optional[float] = ...) -> None: ...

class ImportHeader(_message.Message):
    __slots__ = ("name", "inputs", "model_bytes", "external_files")
    class ExternalFilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FILES_FIELD_NUMBER: _ClassVar[int]
    name: str
    inputs: _containers.RepeatedCompositeFieldContainer[InputDeclaration]
    model_bytes: int
    external_files: _containers.ScalarMap[str, int]
    def __init__(self, name: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[InputDeclaration, _Mapping]]] = ..., model_bytes: _Optional[int] = ..., external_files: _Optional[_Mapping[str, int]] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("file", "data")
    FILE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    file: str
    data: bytes
    def __init__(self, file: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ImportModelRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ImportHeader
    chunk: FileChunk
    def __init__(self, header: _Optional[_Union[ImportHeader, _Mapping]] = ..., chunk: _Optional[_Union[FileChunk, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ModelDetail(_message.Message):
    __slots__ = ("info", "layers")
    INFO_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    info: ModelInfo
    layers: _containers.RepeatedCompositeFieldContainer[Layer]
    def __init__(self, info: _Optional[_Union[ModelInfo, _Mapping]] = ..., layers: _Optional[_Iterable[_Union[Layer, _Mapping]]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("kind", "layer", "channel", "position", "weight")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CHANNEL: _ClassVar[Target.Kind]
        NEURON: _ClassVar[Target.Kind]
        LOGIT: _ClassVar[Target.Kind]
    CHANNEL: Target.Kind
    NEURON: Target.Kind
    LOGIT: Target.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    kind: Target.Kind
    layer: str
    channel: int
    position: _containers.RepeatedScalarFieldContainer[int]
    weight: float
    def __init__(self, kind: _Optional[_Union[Target.Kind, str]] = ..., layer: _Optional[str] = ..., channel: _Optional[int] = ..., position: _Optional[_Iterable[int]] = ..., weight: _Optional[float] = ...) -> None: ...

class Objective(_message.Message):
    __slots__ = ("terms",)
    TERMS_FIELD_NUMBER: _ClassVar[int]
    terms: _containers.RepeatedCompositeFieldContainer[Target]
    def __init__(self, terms: _Optional[_Iterable[_Union[Target, _Mapping]]] = ...) -> None: ...

class RegularizerSetting(_message.Message):
    __slots__ = ("kappa", "gamma")
    KAPPA_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    kappa: float
    gamma: float
    def __init__(self, kappa: _Optional[float] = ..., gamma: _Optional[float] = ...) -> None: ...

class MaximizeOptions(_message.Message):
    __slots__ = ("iterations", "learning_rate", "final_learning_rate", "alpha", "bound", "v_ratio", "motion_tv_factor", "jitter", "init_scale", "seed", "normalize", "objective_weight", "max_batch", "progress_every", "param")
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    FINAL_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    V_RATIO_FIELD_NUMBER: _ClassVar[int]
    MOTION_TV_FACTOR_FIELD_NUMBER: _ClassVar[int]
    JITTER_FIELD_NUMBER: _ClassVar[int]
    INIT_SCALE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_EVERY_FIELD_NUMBER: _ClassVar[int]
    PARAM_FIELD_NUMBER: _ClassVar[int]
    iterations: int
    learning_rate: float
    final_learning_rate: float
    alpha: float
    bound: float
    v_ratio: float
    motion_tv_factor: float
    jitter: bool
    init_scale: float
    seed: int
    normalize: bool
    objective_weight: float
    max_batch: int
    progress_every: int
    param: str
    def __init__(self, iterations: _Optional[int] = ..., learning_rate: _Optional[float] = ..., final_learning_rate: _Optional[float] = ..., alpha: _Optional[float] = ..., bound: _Optional[float] = ..., v_ratio: _Optional[float] = ..., motion_tv_factor: _Optional[float] = ..., jitter: _Optional[bool] = ..., init_scale: _Optional[float] = ..., seed: _Optional[int] = ..., normalize: _Optional[bool] = ..., objective_weight: _Optional[float] = ..., max_batch: _Optional[int] = ..., progress_every: _Optional[int] = ..., param: _Optional[str] = ...) -> None: ...

class MaximizeRequest(_message.Message):
    __slots__ = ("model", "objectives", "settings", "options", "recording")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    model: str
    objectives: _containers.RepeatedCompositeFieldContainer[Objective]
    settings: _containers.RepeatedCompositeFieldContainer[RegularizerSetting]
    options: MaximizeOptions
    recording: str
    def __init__(self, model: _Optional[str] = ..., objectives: _Optional[_Iterable[_Union[Objective, _Mapping]]] = ..., settings: _Optional[_Iterable[_Union[RegularizerSetting, _Mapping]]] = ..., options: _Optional[_Union[MaximizeOptions, _Mapping]] = ..., recording: _Optional[str] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("step", "iterations", "samples_done", "samples_total", "activation", "loss", "chunk_start")
    STEP_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_DONE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_START_FIELD_NUMBER: _ClassVar[int]
    step: int
    iterations: int
    samples_done: int
    samples_total: int
    activation: _containers.RepeatedScalarFieldContainer[float]
    loss: _containers.RepeatedScalarFieldContainer[float]
    chunk_start: int
    def __init__(self, step: _Optional[int] = ..., iterations: _Optional[int] = ..., samples_done: _Optional[int] = ..., samples_total: _Optional[int] = ..., activation: _Optional[_Iterable[float]] = ..., loss: _Optional[_Iterable[float]] = ..., chunk_start: _Optional[int] = ...) -> None: ...

class UnitResult(_message.Message):
    __slots__ = ("unit_index", "setting_index", "objective", "setting", "activation", "best_activation", "normalizer", "has_reference", "reference_max", "stopped", "losses", "activations", "optimized_inputs", "target")
    UNIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    SETTING_INDEX_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    SETTING_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    BEST_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    NORMALIZER_FIELD_NUMBER: _ClassVar[int]
    HAS_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_MAX_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    ACTIVATIONS_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZED_INPUTS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    unit_index: int
    setting_index: int
    objective: str
    setting: RegularizerSetting
    activation: float
    best_activation: float
    normalizer: float
    has_reference: bool
    reference_max: float
    stopped: str
    losses: _containers.RepeatedScalarFieldContainer[float]
    activations: _containers.RepeatedScalarFieldContainer[float]
    optimized_inputs: _containers.RepeatedScalarFieldContainer[str]
    target: Objective
    def __init__(self, unit_index: _Optional[int] = ..., setting_index: _Optional[int] = ..., objective: _Optional[str] = ..., setting: _Optional[_Union[RegularizerSetting, _Mapping]] = ..., activation: _Optional[float] = ..., best_activation: _Optional[float] = ..., normalizer: _Optional[float] = ..., has_reference: _Optional[bool] = ..., reference_max: _Optional[float] = ..., stopped: _Optional[str] = ..., losses: _Optional[_Iterable[float]] = ..., activations: _Optional[_Iterable[float]] = ..., optimized_inputs: _Optional[_Iterable[str]] = ..., target: _Optional[_Union[Objective, _Mapping]] = ...) -> None: ...

class ResultChunk(_message.Message):
    __slots__ = ("unit_index", "setting_index", "chunk")
    UNIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    SETTING_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    unit_index: int
    setting_index: int
    chunk: TensorChunk
    def __init__(self, unit_index: _Optional[int] = ..., setting_index: _Optional[int] = ..., chunk: _Optional[_Union[TensorChunk, _Mapping]] = ...) -> None: ...

class MaximizeSummary(_message.Message):
    __slots__ = ("warnings", "seconds")
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    seconds: float
    def __init__(self, warnings: _Optional[_Iterable[str]] = ..., seconds: _Optional[float] = ...) -> None: ...

class MaximizeEvent(_message.Message):
    __slots__ = ("progress", "result", "data", "summary")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    result: UnitResult
    data: ResultChunk
    summary: MaximizeSummary
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[UnitResult, _Mapping]] = ..., data: _Optional[_Union[ResultChunk, _Mapping]] = ..., summary: _Optional[_Union[MaximizeSummary, _Mapping]] = ...) -> None: ...

class RecordHeader(_message.Message):
    __slots__ = ("model", "layers", "top_k", "name", "histogram_bins")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_BINS_FIELD_NUMBER: _ClassVar[int]
    model: str
    layers: _containers.RepeatedScalarFieldContainer[str]
    top_k: int
    name: str
    histogram_bins: int
    def __init__(self, model: _Optional[str] = ..., layers: _Optional[_Iterable[str]] = ..., top_k: _Optional[int] = ..., name: _Optional[str] = ..., histogram_bins: _Optional[int] = ...) -> None: ...

class ClipStart(_message.Message):
    __slots__ = ("id", "has_label", "label")
    ID_FIELD_NUMBER: _ClassVar[int]
    HAS_LABEL_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    has_label: bool
    label: int
    def __init__(self, id: _Optional[str] = ..., has_label: _Optional[bool] = ..., label: _Optional[int] = ...) -> None: ...

class RecordRequest(_message.Message):
    __slots__ = ("header", "clip", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: RecordHeader
    clip: ClipStart
    data: TensorChunk
    def __init__(self, header: _Optional[_Union[RecordHeader, _Mapping]] = ..., clip: _Optional[_Union[ClipStart, _Mapping]] = ..., data: _Optional[_Union[TensorChunk, _Mapping]] = ...) -> None: ...

class TopClip(_message.Message):
    __slots__ = ("clip_id", "clip_index", "value")
    CLIP_ID_FIELD_NUMBER: _ClassVar[int]
    CLIP_INDEX_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    clip_id: str
    clip_index: int
    value: float
    def __init__(self, clip_id: _Optional[str] = ..., clip_index: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class ChannelTop(_message.Message):
    __slots__ = ("clips",)
    CLIPS_FIELD_NUMBER: _ClassVar[int]
    clips: _containers.RepeatedCompositeFieldContainer[TopClip]
    def __init__(self, clips: _Optional[_Iterable[_Union[TopClip, _Mapping]]] = ...) -> None: ...

class LayerStatistics(_message.Message):
    __slots__ = ("layer", "max", "mean", "top", "histogram", "histogram_edges", "per_class_max", "per_class_sum", "per_class_count")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_EDGES_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_MAX_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_SUM_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_COUNT_FIELD_NUMBER: _ClassVar[int]
    layer: str
    max: _containers.RepeatedScalarFieldContainer[float]
    mean: _containers.RepeatedScalarFieldContainer[float]
    top: _containers.RepeatedCompositeFieldContainer[ChannelTop]
    histogram: Tensor
    histogram_edges: _containers.RepeatedScalarFieldContainer[float]
    per_class_max: Tensor
    per_class_sum: Tensor
    per_class_count: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, layer: _Optional[str] = ..., max: _Optional[_Iterable[float]] = ..., mean: _Optional[_Iterable[float]] = ..., top: _Optional[_Iterable[_Union[ChannelTop, _Mapping]]] = ..., histogram: _Optional[_Union[Tensor, _Mapping]] = ..., histogram_edges: _Optional[_Iterable[float]] = ..., per_class_max: _Optional[_Union[Tensor, _Mapping]] = ..., per_class_sum: _Optional[_Union[Tensor, _Mapping]] = ..., per_class_count: _Optional[_Iterable[int]] = ...) -> None: ...

class RecordingInfo(_message.Message):
    __slots__ = ("id", "name", "model", "clips", "layers", "created_at", "clips_kept")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CLIPS_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CLIPS_KEPT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    model: str
    clips: int
    layers: _containers.RepeatedScalarFieldContainer[str]
    created_at: float
    clips_kept: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., model: _Optional[str] = ..., clips: _Optional[int] = ..., layers: _Optional[_Iterable[str]] = ..., created_at: _Optional[float] = ..., clips_kept: _Optional[bool] = ...) -> None: ...

class Recording(_message.Message):
    __slots__ = ("info", "layers")
    INFO_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    info: RecordingInfo
    layers: _containers.RepeatedCompositeFieldContainer[LayerStatistics]
    def __init__(self, info: _Optional[_Union[RecordingInfo, _Mapping]] = ..., layers: _Optional[_Iterable[_Union[LayerStatistics, _Mapping]]] = ...) -> None: ...

class GetRecordingRequest(_message.Message):
    __slots__ = ("recording",)
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    recording: str
    def __init__(self, recording: _Optional[str] = ...) -> None: ...

class ListRecordingsRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ListRecordingsResponse(_message.Message):
    __slots__ = ("recordings",)
    RECORDINGS_FIELD_NUMBER: _ClassVar[int]
    recordings: _containers.RepeatedCompositeFieldContainer[RecordingInfo]
    def __init__(self, recordings: _Optional[_Iterable[_Union[RecordingInfo, _Mapping]]] = ...) -> None: ...

class AnalyzeOptions(_message.Message):
    __slots__ = ("permutations", "alpha", "top_classes", "seed", "speeds", "skip_speed")
    PERMUTATIONS_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    TOP_CLASSES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SPEEDS_FIELD_NUMBER: _ClassVar[int]
    SKIP_SPEED_FIELD_NUMBER: _ClassVar[int]
    permutations: int
    alpha: float
    top_classes: int
    seed: int
    speeds: _containers.RepeatedScalarFieldContainer[float]
    skip_speed: bool
    def __init__(self, permutations: _Optional[int] = ..., alpha: _Optional[float] = ..., top_classes: _Optional[int] = ..., seed: _Optional[int] = ..., speeds: _Optional[_Iterable[float]] = ..., skip_speed: _Optional[bool] = ...) -> None: ...

class AnalyzeRequest(_message.Message):
    __slots__ = ("model", "recording", "layers", "options")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    recording: str
    layers: _containers.RepeatedScalarFieldContainer[str]
    options: AnalyzeOptions
    def __init__(self, model: _Optional[str] = ..., recording: _Optional[str] = ..., layers: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[AnalyzeOptions, _Mapping]] = ...) -> None: ...

class UnitAnalysis(_message.Message):
    __slots__ = ("channel", "class_mean", "class_max", "selectivity", "sparseness", "top_classes", "p_value", "label", "reliance", "shares", "stream_label", "speed_curve", "preferred_speed", "speed_invariance")
    class RelianceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SharesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CLASS_MEAN_FIELD_NUMBER: _ClassVar[int]
    CLASS_MAX_FIELD_NUMBER: _ClassVar[int]
    SELECTIVITY_FIELD_NUMBER: _ClassVar[int]
    SPARSENESS_FIELD_NUMBER: _ClassVar[int]
    TOP_CLASSES_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    RELIANCE_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    STREAM_LABEL_FIELD_NUMBER: _ClassVar[int]
    SPEED_CURVE_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_SPEED_FIELD_NUMBER: _ClassVar[int]
    SPEED_INVARIANCE_FIELD_NUMBER: _ClassVar[int]
    channel: int
    class_mean: _containers.RepeatedScalarFieldContainer[float]
    class_max: _containers.RepeatedScalarFieldContainer[float]
    selectivity: float
    sparseness: float
    top_classes: _containers.RepeatedScalarFieldContainer[int]
    p_value: float
    label: str
    reliance: _containers.ScalarMap[str, float]
    shares: _containers.ScalarMap[str, float]
    stream_label: str
    speed_curve: _containers.RepeatedScalarFieldContainer[float]
    preferred_speed: float
    speed_invariance: float
    def __init__(self, channel: _Optional[int] = ..., class_mean: _Optional[_Iterable[float]] = ..., class_max: _Optional[_Iterable[float]] = ..., selectivity: _Optional[float] = ..., sparseness: _Optional[float] = ..., top_classes: _Optional[_Iterable[int]] = ..., p_value: _Optional[float] = ..., label: _Optional[str] = ..., reliance: _Optional[_Mapping[str, float]] = ..., shares: _Optional[_Mapping[str, float]] = ..., stream_label: _Optional[str] = ..., speed_curve: _Optional[_Iterable[float]] = ..., preferred_speed: _Optional[float] = ..., speed_invariance: _Optional[float] = ...) -> None: ...

class LayerAnalysis(_message.Message):
    __slots__ = ("layer", "inputs", "units")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    layer: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    units: _containers.RepeatedCompositeFieldContainer[UnitAnalysis]
    def __init__(self, layer: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., units: _Optional[_Iterable[_Union[UnitAnalysis, _Mapping]]] = ...) -> None: ...

class AnalyzeResponse(_message.Message):
    __slots__ = ("model", "recording", "clips", "class_names", "speeds", "alpha", "permutations", "layers")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    CLIPS_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    SPEEDS_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    PERMUTATIONS_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    model: str
    recording: str
    clips: int
    class_names: _containers.RepeatedScalarFieldContainer[str]
    speeds: _containers.RepeatedScalarFieldContainer[float]
    alpha: float
    permutations: int
    layers: _containers.RepeatedCompositeFieldContainer[LayerAnalysis]
    def __init__(self, model: _Optional[str] = ..., recording: _Optional[str] = ..., clips: _Optional[int] = ..., class_names: _Optional[_Iterable[str]] = ..., speeds: _Optional[_Iterable[float]] = ..., alpha: _Optional[float] = ..., permutations: _Optional[int] = ..., layers: _Optional[_Iterable[_Union[LayerAnalysis, _Mapping]]] = ...) -> None: ...

class EvolutionRequest(_message.Message):
    __slots__ = ("checkpoints", "maximize")
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    MAXIMIZE_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedScalarFieldContainer[str]
    maximize: MaximizeRequest
    def __init__(self, checkpoints: _Optional[_Iterable[str]] = ..., maximize: _Optional[_Union[MaximizeRequest, _Mapping]] = ...) -> None: ...

class InputEvolution(_message.Message):
    __slots__ = ("input", "change", "variation")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    VARIATION_FIELD_NUMBER: _ClassVar[int]
    input: str
    change: _containers.RepeatedScalarFieldContainer[float]
    variation: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, input: _Optional[str] = ..., change: _Optional[_Iterable[float]] = ..., variation: _Optional[_Iterable[float]] = ...) -> None: ...

class UnitEvolution(_message.Message):
    __slots__ = ("unit", "setting", "target", "inputs")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    SETTING_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    unit: int
    setting: int
    target: Objective
    inputs: _containers.RepeatedCompositeFieldContainer[InputEvolution]
    def __init__(self, unit: _Optional[int] = ..., setting: _Optional[int] = ..., target: _Optional[_Union[Objective, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[InputEvolution, _Mapping]]] = ...) -> None: ...

class EvolutionResponse(_message.Message):
    __slots__ = ("checkpoints", "settings", "units")
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedScalarFieldContainer[str]
    settings: _containers.RepeatedCompositeFieldContainer[RegularizerSetting]
    units: _containers.RepeatedCompositeFieldContainer[UnitEvolution]
    def __init__(self, checkpoints: _Optional[_Iterable[str]] = ..., settings: _Optional[_Iterable[_Union[RegularizerSetting, _Mapping]]] = ..., units: _Optional[_Iterable[_Union[UnitEvolution, _Mapping]]] = ...) -> None: ...

class SweepLayer(_message.Message):
    __slots__ = ("layer", "channels", "kind", "batch", "model")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    layer: str
    channels: _containers.RepeatedScalarFieldContainer[int]
    kind: Target.Kind
    batch: int
    model: str
    def __init__(self, layer: _Optional[str] = ..., channels: _Optional[_Iterable[int]] = ..., kind: _Optional[_Union[Target.Kind, str]] = ..., batch: _Optional[int] = ..., model: _Optional[str] = ...) -> None: ...

class SweepRequest(_message.Message):
    __slots__ = ("models", "layers", "settings", "options", "recording")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedScalarFieldContainer[str]
    layers: _containers.RepeatedCompositeFieldContainer[SweepLayer]
    settings: _containers.RepeatedCompositeFieldContainer[RegularizerSetting]
    options: MaximizeOptions
    recording: str
    def __init__(self, models: _Optional[_Iterable[str]] = ..., layers: _Optional[_Iterable[_Union[SweepLayer, _Mapping]]] = ..., settings: _Optional[_Iterable[_Union[RegularizerSetting, _Mapping]]] = ..., options: _Optional[_Union[MaximizeOptions, _Mapping]] = ..., recording: _Optional[str] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("maximize", "sweep", "name", "batch")
    MAXIMIZE_FIELD_NUMBER: _ClassVar[int]
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    maximize: MaximizeRequest
    sweep: SweepRequest
    name: str
    batch: int
    def __init__(self, maximize: _Optional[_Union[MaximizeRequest, _Mapping]] = ..., sweep: _Optional[_Union[SweepRequest, _Mapping]] = ..., name: _Optional[str] = ..., batch: _Optional[int] = ...) -> None: ...

class JobTask(_message.Message):
    __slots__ = ("index", "model", "layer", "channels", "first_objective", "kind", "state", "runs", "seconds", "error", "key")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FIRST_OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    index: int
    model: str
    layer: str
    channels: _containers.RepeatedScalarFieldContainer[int]
    first_objective: int
    kind: Target.Kind
    state: TaskState
    runs: int
    seconds: float
    error: str
    key: str
    def __init__(self, index: _Optional[int] = ..., model: _Optional[str] = ..., layer: _Optional[str] = ..., channels: _Optional[_Iterable[int]] = ..., first_objective: _Optional[int] = ..., kind: _Optional[_Union[Target.Kind, str]] = ..., state: _Optional[_Union[TaskState, str]] = ..., runs: _Optional[int] = ..., seconds: _Optional[float] = ..., error: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class JobCounts(_message.Message):
    __slots__ = ("done", "failed", "cancelled", "left", "total")
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    done: int
    failed: int
    cancelled: int
    left: int
    total: int
    def __init__(self, done: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., left: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class JobInfo(_message.Message):
    __slots__ = ("id", "name", "state", "kind", "models", "tasks", "created_at", "started_at", "finished_at", "error", "next_offset", "settings", "iterations")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    state: JobState
    kind: str
    models: _containers.RepeatedScalarFieldContainer[str]
    tasks: JobCounts
    created_at: float
    started_at: float
    finished_at: float
    error: str
    next_offset: int
    settings: _containers.RepeatedCompositeFieldContainer[RegularizerSetting]
    iterations: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., kind: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., tasks: _Optional[_Union[JobCounts, _Mapping]] = ..., created_at: _Optional[float] = ..., started_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., error: _Optional[str] = ..., next_offset: _Optional[int] = ..., settings: _Optional[_Iterable[_Union[RegularizerSetting, _Mapping]]] = ..., iterations: _Optional[int] = ...) -> None: ...

class JobDetail(_message.Message):
    __slots__ = ("info", "tasks", "spec")
    INFO_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    info: JobInfo
    tasks: _containers.RepeatedCompositeFieldContainer[JobTask]
    spec: SubmitJobRequest
    def __init__(self, info: _Optional[_Union[JobInfo, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[JobTask, _Mapping]]] = ..., spec: _Optional[_Union[SubmitJobRequest, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: str
    def __init__(self, job: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "model")
    STATES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[JobState]
    model: str
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., model: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobInfo]
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobInfo, _Mapping]]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: str
    def __init__(self, job: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: str
    def __init__(self, job: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job", "from_offset", "results")
    JOB_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    job: str
    from_offset: int
    results: bool
    def __init__(self, job: _Optional[str] = ..., from_offset: _Optional[int] = ..., results: _Optional[bool] = ...) -> None: ...

class TaskProgress(_message.Message):
    __slots__ = ("task", "step", "iterations", "samples_done", "samples_total")
    TASK_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_DONE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    task: int
    step: int
    iterations: int
    samples_done: int
    samples_total: int
    def __init__(self, task: _Optional[int] = ..., step: _Optional[int] = ..., iterations: _Optional[int] = ..., samples_done: _Optional[int] = ..., samples_total: _Optional[int] = ...) -> None: ...

class TaskFinished(_message.Message):
    __slots__ = ("task", "state", "seconds", "cached", "error")
    TASK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    task: int
    state: TaskState
    seconds: float
    cached: bool
    error: str
    def __init__(self, task: _Optional[int] = ..., state: _Optional[_Union[TaskState, str]] = ..., seconds: _Optional[float] = ..., cached: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("offset", "time", "state", "tasks", "changed", "progress", "finished", "started", "result")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    offset: int
    time: float
    state: JobState
    tasks: JobCounts
    changed: JobState
    progress: TaskProgress
    finished: TaskFinished
    started: int
    result: JobResultsEvent
    def __init__(self, offset: _Optional[int] = ..., time: _Optional[float] = ..., state: _Optional[_Union[JobState, str]] = ..., tasks: _Optional[_Union[JobCounts, _Mapping]] = ..., changed: _Optional[_Union[JobState, str]] = ..., progress: _Optional[_Union[TaskProgress, _Mapping]] = ..., finished: _Optional[_Union[TaskFinished, _Mapping]] = ..., started: _Optional[int] = ..., result: _Optional[_Union[JobResultsEvent, _Mapping]] = ...) -> None: ...

class JobResultsRequest(_message.Message):
    __slots__ = ("job", "layers", "channels", "settings", "tasks")
    JOB_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    job: str
    layers: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[int]
    settings: _containers.RepeatedScalarFieldContainer[int]
    tasks: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, job: _Optional[str] = ..., layers: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[int]] = ..., settings: _Optional[_Iterable[int]] = ..., tasks: _Optional[_Iterable[int]] = ...) -> None: ...

class JobResultsEvent(_message.Message):
    __slots__ = ("task", "result", "data")
    TASK_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    task: JobTask
    result: UnitResult
    data: ResultChunk
    def __init__(self, task: _Optional[_Union[JobTask, _Mapping]] = ..., result: _Optional[_Union[UnitResult, _Mapping]] = ..., data: _Optional[_Union[ResultChunk, _Mapping]] = ...) -> None: ...
