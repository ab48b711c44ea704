"""Training on MNIST: the loop behind `train`, the tutorial's network (by autograd or by hand) and the Modules
(mlp, cnn) with their optimizers, live progress, a metrics history, and loading a saved model for the commands.

    config.py    TrainConfig (what decides a run, checked), ConfigError, the inputs' scaling
    adapters.py  how each model kind of tinygrad_edu.models trains and predicts (MODELS), load_model
    loop.py      train (steps, history, evaluation, Ctrl-C between steps), the data sets, TrainResult
    progress.py  Progress on stderr, and divergence: the early signs of a run going wrong
"""
from tinygrad_edu.training.adapters import (
    ARCHITECTURES,
    CNN_CHANNELS,
    EVAL_NUMBERS,
    EVAL_ROWS,
    MODELS,
    CNNNet,
    MLPNet,
    ModuleNet,
    TutorialNet,
    architecture_for,
    as_input,
    cross_entropy,
    describe,
    eval_chunk,
    load_model,
    parameter_shapes,
)
from tinygrad_edu.training.config import (
    NORMALIZATIONS,
    OPTIMIZERS,
    PIXELS,
    SCHEDULES,
    ConfigError,
    TrainConfig,
    input_scaling,
    inputs_entry,
    read_inputs,
)
from tinygrad_edu.training.loop import (
    LOADERS,
    TrainingDiverged,
    TrainingInterrupted,
    TrainResult,
    accuracy,
    evaluated_set,
    interrupt_between_steps,
    load_data,
    split_validation,
    train,
    write_json,
)
from tinygrad_edu.training.progress import (
    ACCURACY_AFTER,
    ACCURACY_FLOOR,
    LOSS_FACTOR,
    LOSS_POINTS,
    SLOW,
    Progress,
    divergence,
    divergence_advice,
)

__all__ = ["ACCURACY_AFTER", "ACCURACY_FLOOR", "ARCHITECTURES", "CNN_CHANNELS", "CNNNet", "ConfigError",
           "EVAL_NUMBERS", "EVAL_ROWS", "LOADERS", "LOSS_FACTOR", "LOSS_POINTS", "MLPNet", "MODELS", "ModuleNet",
           "NORMALIZATIONS", "OPTIMIZERS", "PIXELS", "Progress", "SCHEDULES", "SLOW", "TrainConfig", "TrainResult",
           "TrainingDiverged", "TrainingInterrupted", "TutorialNet", "accuracy", "architecture_for", "as_input",
           "cross_entropy", "describe", "divergence", "divergence_advice", "eval_chunk", "evaluated_set",
           "input_scaling", "inputs_entry", "interrupt_between_steps", "load_data", "load_model",
           "parameter_shapes", "read_inputs", "split_validation", "train", "write_json"]
