"""How the optimized variables are stepped: Adam, once (`adam.py`), and the `Updater` that applies it
to every input of a run (`updater.py`): in torch (`TorchUpdater`) or in the native C loop
(`NativeUpdater`), chosen once per run by `choose_updater`."""

from .adam import Adam, AdamSchedule

__all__ = ["Adam", "AdamSchedule"]
