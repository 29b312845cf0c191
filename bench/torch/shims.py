"""
Import shims for `npm run bench -- --torch` (bench/torch/stages.py): placeholder modules for packages that the
upstream sources import at module level but that no timed path uses, and that Debian 12 does not package
(huggingface_hub: model downloads, imported by diffusers' utils; pooch: librosa's example-data registry, imported
by librosa.util.files; audioread, resampy, sklearn: librosa's file decoding, resampling and decompositions,
imported by librosa's package __init__). Every attribute of a placeholder module is an inert stand-in (calling it gives another one);
none of the timed modules calls into these packages (downloads and example data only).
"""
import importlib.abc
import importlib.machinery
import sys
import tempfile
import types

SHIMMED = ("huggingface_hub", "pooch", "audioread", "resampy", "sklearn")


class _Inert:
    """stand-in for any name of a shimmed package: usable as a value, a decorator argument or a base class"""

    def __init__(self, name):
        self._name = name

    def __call__(self, *a, **k):
        # decorators (e.g. huggingface_hub.utils.validate_hf_hub_args) wrap functions at import time: pass them through
        if len(a) == 1 and not k and callable(a[0]) and not isinstance(a[0], _Inert):
            return a[0]
        # import-time set-up calls (pooch.create(...), pooch.os_cache(...)) give another stand-in
        return _Inert(f"{self._name}()")

    def __getattr__(self, attr):
        return _Inert(f"{self._name}.{attr}")

    def __getitem__(self, key):
        return _Inert(f"{self._name}[]")

    def __mro_entries__(self, bases):
        return (Exception,)

    def __str__(self):
        return tempfile.gettempdir()

    __fspath__ = __str__


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in SHIMMED:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        m = types.ModuleType(spec.name)
        m.__path__ = []
        m.__getattr__ = lambda attr, _n=spec.name: _Inert(f"{_n}.{attr}")
        m.__version__ = "0.0.0-shim"
        return m

    def exec_module(self, module):
        pass


def install():
    """install the placeholders for the packages that are really absent"""
    import importlib.util
    absent = [n for n in SHIMMED if importlib.util.find_spec(n) is None]
    if absent:
        sys.meta_path.append(_Finder())
    return absent
