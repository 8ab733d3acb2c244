"""LaTeX formulas as images, offline: matplotlib's mathtext (no TeX installation, no network), rendered once per
formula and colour and kept in memory. Qt-free: the transcript turns an image into a QImage (`math:KEY` links)."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

DPI = 100
FONT_SIZE = 11.0  # points, at DPI: close to the transcript's text
CACHE_SIZE = 2000  # formulas kept (a few KB each)
# matplotlib (its fonts, FreeType objects and caches) is process-wide and not thread-safe: every MathImages (one
# per theme and screen scale, each warmed up on its own thread) typesets under this one lock.
_MATPLOTLIB = threading.Lock()


@dataclass(frozen=True)
class MathImage:
    """One typeset formula: RGBA pixels (row-major, height x width x 4) and where its baseline sits."""

    key: str
    width: int
    height: int
    depth: int  # pixels below the baseline
    rgba: bytes
    scale: float = 1.0  # pixels per logical pixel (the screen's device pixel ratio)

    @property
    def logical_size(self) -> tuple[int, int]:
        """Width and height in logical pixels (what the HTML asks for; high-DPI screens paint all the pixels)."""
        return round(self.width / self.scale), round(self.height / self.scale)


class MathImages:
    """Renders and caches formulas; thread-safe (one process-wide lock around matplotlib, which is not)."""

    def __init__(self, color: tuple[int, int, int] = (0, 0, 0), scale: float = 1.0) -> None:
        self.color = color
        self.scale = max(1.0, float(scale))  # typeset at DPI x scale for high-DPI screens
        self._images: OrderedDict[str, MathImage | None] = OrderedDict()
        self._by_key: dict[str, MathImage] = {}
        self._lock = _MATPLOTLIB
        self._parser = None
        self.renders = 0  # formulas typeset (cache misses), for tests and benchmarks
        self.ready = threading.Event()  # set once warm_up() has run

    def warm_up(self) -> None:
        """Import matplotlib and load its fonts (~1 s the first time) so the first formula shown is fast; meant for
        a background thread at start."""
        try:
            self.image("x^2", display=False)
        except Exception:  # a broken matplotlib install: formulas then show as their source, logged each time
            log.exception("typesetting a formula failed")
        finally:
            self.ready.set()

    def image(self, tex: str, display: bool) -> MathImage | None:
        """The formula typeset (None when matplotlib cannot parse it or is not installed)."""
        key = _key(tex, display, self.color, self.scale)
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
            image = self._render(tex, display, key)
            self._images[key] = image
            if image is not None:
                self._by_key[key] = image
            while len(self._images) > CACHE_SIZE:
                old, dropped = self._images.popitem(last=False)
                if dropped is not None:
                    self._by_key.pop(old, None)
            return image

    def by_key(self, key: str) -> MathImage | None:
        """A formula rendered before, by its `math:KEY` link."""
        with self._lock:
            return self._by_key.get(key)

    def _render(self, tex: str, display: bool, key: str) -> MathImage | None:
        parser = self._load_parser()
        if parser is None:
            return None
        from matplotlib.font_manager import FontProperties

        self.renders += 1
        try:
            parsed = parser.parse(f"${tex}$", dpi=round(DPI * self.scale),
                                  prop=FontProperties(size=FONT_SIZE * (1.2 if display else 1.0)))
        except ValueError as err:  # mathtext's ParseFatalException: shown as its source instead
            log.debug("formula not typeset (%s): %r", str(err).splitlines()[0], tex)
            return None
        alpha = np.asarray(parsed.image, dtype=np.uint8)
        height, width = alpha.shape
        rgba = np.empty((height, width, 4), dtype=np.uint8)
        rgba[..., :3] = self.color
        rgba[..., 3] = alpha
        return MathImage(key, width, height, round(parsed.depth), rgba.tobytes(), self.scale)

    def _load_parser(self):
        if self._parser is None:
            try:
                import matplotlib

                matplotlib.use("Agg", force=False)
                from matplotlib.mathtext import MathTextParser
            except ImportError as err:
                log.warning("matplotlib is not installed; formulas are shown as their TeX source (%s)", err)
                self._parser = False
                return None
            self._parser = MathTextParser("agg")
        return self._parser or None


def _key(tex: str, display: bool, color: tuple[int, int, int], scale: float) -> str:
    return hashlib.sha1(f"{display}|{color}|{scale}|{tex}".encode()).hexdigest()[:20]
