"""The embedded demo and its synthetic data: seeded soundscapes with known labels, the shipped
demo model's training, and the held-out run `birdinfer infer` scores with no arguments.

`write_soundscapes` writes seeded soundscapes (and their labels in the competition's solution
format); `make_soundscape` makes one in memory (a `Soundscape`) from `Species` (`DEMO_SPECIES`
by default); `window_labels` and `windows_covering` turn its calls into 5 s window labels.
`make_demo_model` trains and exports the demo model (`TrainSettings`, `DEMO_MEL`; needs torch).
`heldout` prepares the demo's held-out soundscapes and scores a run on them, with the shipped
model, `DEMO_MODEL` (`builtin:demo` in a config).
"""

from birdinfer.demo.builtin import DEMO_MODEL

__all__ = [
    "DEMO_MEL",
    "DEMO_MODEL",
    "DEMO_SPECIES",
    "Soundscape",
    "Species",
    "TrainSettings",
    "heldout",
    "make_demo_model",
    "make_soundscape",
    "window_labels",
    "windows_covering",
    "write_soundscapes",
]

# The rest loads on first use: `import birdinfer` imports this package (for the built-in
# model's registration), a run generates audio only when its config asks for the demo, and
# training needs the export side besides.
_SYNTH = (
    "DEMO_SPECIES",
    "Soundscape",
    "Species",
    "make_soundscape",
    "window_labels",
    "windows_covering",
    "write_soundscapes",
)
_TRAIN = ("DEMO_MEL", "TrainSettings", "make_demo_model")


def __getattr__(name: str):
    if name == "heldout":
        import birdinfer.demo.heldout as heldout  # `from` here would ask this function again

        return heldout
    if name in _SYNTH:
        from birdinfer.demo import synth

        return getattr(synth, name)
    if name in _TRAIN:
        from birdinfer.demo import train

        return getattr(train, name)
    raise AttributeError(f"module 'birdinfer.demo' has no attribute {name!r}")
