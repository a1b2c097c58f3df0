"""Find more like this: nearest videos by cosine similarity of their embeddings, in DuckDB.

A tag run with ``--embeddings`` stores one vector per video in the lake's ``embeddings`` table: the
model's pooled penultimate features (the classification head's input averaged over the clips),
L2-normalised, float32, ``dim`` long (fixed per model version). Vectors are only ever compared with
vectors of the same model name and version: two versions' feature spaces have nothing in common.
Each video counts once per version, by its latest embedding (the ``latest_embeddings`` view).

The scores come from DuckDB's ``list_cosine_similarity`` over the read-only connection of
``actionrec.lake.query`` (values always as parameters). It beats ``array_cosine_similarity`` on
``FLOAT[dim]`` casts here, since the stored lists need no cast; either way a search is dominated by
reading the vectors from Parquet (see README, Find more like this, for the time on 100,000).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from actionrec.errors import ConfigError
from actionrec.io.uris import normalize_uri
from actionrec.lake.query import NO_LIMITS_GIVEN, QueryLimits, connect, execute

log = logging.getLogger(__name__)
Pooling = Literal["max", "mean"]
POOLINGS = ("max", "mean")


class NoEmbeddingError(ConfigError):
    """The video (or none of the videos) has an embedding in the lake: it was not tagged with
    ``--embeddings`` by that model, or it failed."""


class Neighbour(NamedTuple):
    """One video found: its URI and cosine similarity (higher is nearer, at most 1), then the
    identity of what was compared (the video's etag when embedded, the model's name and version)."""

    video_uri: str
    score: float
    video_etag: str | None
    model_name: str
    model_version: str


class _Vector(NamedTuple):
    model_name: str
    model_version: str
    embedding: list[float]


def similar(lake: str | os.PathLike, query: str | Sequence[float] | np.ndarray, k: int = 10,
            model_name: str | None = None, *, model_version: str | None = None,
            limits: QueryLimits = NO_LIMITS_GIVEN, con: Any = None) -> list[Neighbour]:
    """The ``k`` videos nearest to ``query``, nearest first (ties by URI).

    ``query`` is a video URI (or local path) in the lake: its latest embedding (by ``model_name``
    and ``model_version`` when given) is compared with the latest embedding of every other video
    of the same model version, and the video itself is left out. A ``NoEmbeddingError`` says when
    it has none. ``query`` may also be a vector: it is compared with the vectors of its length of
    ``model_name`` (needed when several models have that length) at ``model_version`` (default:
    the version embedded last).

    ``con``: an open connection from ``actionrec.lake.query.connect(lake)`` to reuse across calls
    (opening the views costs a fraction of a second); by default one is opened and closed here.
    """
    _check_k(k)
    with _connection(lake, limits, con) as c:
        if isinstance(query, str | os.PathLike):
            uri = normalize_uri(query)
            found = _latest_vectors(c, [uri], model_name, model_version, limits)
            if not found:
                raise NoEmbeddingError(_missing(lake, [uri], model_name, model_version))
            vector = next(iter(found.values()))
            return _nearest(c, [vector.embedding], vector.model_name, vector.model_version, k, {uri},
                            include_labeled=True, limits=limits)
        values = _as_vector(query)
        name, version = _model_for_vector(c, len(values), model_name, model_version, limits)
        return _nearest(c, [values], name, version, k, set(), include_labeled=True, limits=limits)


def more_like(lake: str | os.PathLike, video_uris: Iterable[str], k: int = 50, model_name: str | None = None, *,
              model_version: str | None = None, how: Pooling = "max", exclude: Iterable[str] = (),
              include_labeled: bool = False, limits: QueryLimits = NO_LIMITS_GIVEN,
              con: Any = None) -> list[Neighbour]:
    """The ``k`` unlabeled videos most like a set of examples (say, the videos labeled with one
    class), best first: a source for the labeling queue (its ``reason`` ``similar``, its ``score``
    the ``Neighbour.score``).

    Scoring, ``how``: ``max`` (the default) gives each candidate its cosine similarity to the
    NEAREST example, so examples that are varied (one action filmed several ways) each pull in their
    own neighbours; ``mean`` compares each candidate with the examples' mean direction (their
    normalised mean vector), one comparison per candidate whatever the number of examples, but it
    favours the kind of example that is most numerous. ``max`` costs one comparison per candidate
    and example.

    The examples are compared in one model version: ``model_name``/``model_version`` when given,
    else that of the examples' most recent embedding; examples with no embedding in that version
    are left out (logged), and a ``NoEmbeddingError`` says when none has one. Left out of the
    answer: the examples, every video in the lake's ``labels`` table (unless ``include_labeled``)
    and the URIs in ``exclude`` (say, videos already queued). Each video counts once, by its latest
    embedding in that version.

    ``con``: as in ``similar``, a connection to reuse (a queue asking for several classes).
    """
    _check_k(k)
    if how not in POOLINGS:
        raise ConfigError(f"how must be one of {POOLINGS}, got {how!r}")
    uris = list(dict.fromkeys(normalize_uri(u) for u in video_uris))
    if not uris:
        raise ConfigError("more_like needs at least one example video")
    with _connection(lake, limits, con) as c:
        found = _latest_vectors(c, uris, model_name, model_version, limits)
        if not found:
            raise NoEmbeddingError(_missing(lake, uris, model_name, model_version))
        latest = next(iter(found.values()))  # the examples' most recent embedding fixes the version
        vectors = {u: v for u, v in found.items()
                   if (v.model_name, v.model_version) == (latest.model_name, latest.model_version)}
        if len(vectors) < len(found):  # some embedded last by another version: look again in the chosen one
            vectors = _latest_vectors(c, uris, latest.model_name, latest.model_version, limits)
        left_out = [u for u in uris if u not in vectors]
        if left_out:
            log.warning("more_like: %d of %d examples have no embedding by %s@%s and are left out: %s",
                        len(left_out), len(uris), latest.model_name, latest.model_version, ", ".join(left_out[:5]))
        examples = [v.embedding for v in vectors.values()]
        if how == "mean":
            examples = [_mean_direction(examples)]
        skip = set(uris) | {normalize_uri(u) for u in exclude}
        return _nearest(c, examples, latest.model_name, latest.model_version, k, skip,
                        include_labeled=include_labeled, limits=limits)


# -- the queries ---------------------------------------------------------------------------------
def _latest_vectors(con: Any, uris: list[str], model_name: str | None, model_version: str | None,
                    limits: QueryLimits) -> dict[str, _Vector]:
    """Each URI's latest embedding (optionally of one model name and version), most recent first."""
    _, rows = execute(con, """
        SELECT video_uri, model_name, model_version, embedding FROM (
          SELECT video_uri, model_name, model_version, embedding, run_id, row_number() OVER (
            PARTITION BY video_uri ORDER BY run_id DESC, model_name, model_version) AS _rank
          FROM embeddings
          WHERE list_contains($uris, video_uri)
            AND ($name IS NULL OR model_name = $name) AND ($version IS NULL OR model_version = $version))
        WHERE _rank = 1 ORDER BY run_id DESC, video_uri""",
                      {"uris": uris, "name": model_name, "version": model_version}, limits)
    return {uri: _Vector(name, version, list(vector)) for uri, name, version, vector in rows}


def _model_for_vector(con: Any, dim: int, model_name: str | None, model_version: str | None,
                      limits: QueryLimits) -> tuple[str, str]:
    """The model name and version whose vectors a bare vector of ``dim`` is compared with."""
    _, rows = execute(con, """
        SELECT model_name, model_version, max(run_id) AS last FROM embeddings
        WHERE dim = $dim AND ($name IS NULL OR model_name = $name) AND ($version IS NULL OR model_version = $version)
        GROUP BY ALL ORDER BY last DESC, model_name, model_version""",
                      {"dim": dim, "name": model_name, "version": model_version}, limits)
    if not rows:
        raise NoEmbeddingError(f"no embeddings of length {dim}"
                               + (f" by {model_name}{'@' + model_version if model_version else ''}" if model_name
                                  or model_version else "") + " in the lake")
    names = sorted({name for name, _, _ in rows})
    if len(names) > 1:
        raise ConfigError(f"embeddings of length {dim} come from several models ({', '.join(names)}): "
                          "say which with model_name")
    return rows[0][0], rows[0][1]


def _nearest(con: Any, examples: list[list[float]], model_name: str, model_version: str, k: int,
             skip: set[str], *, include_labeled: bool, limits: QueryLimits) -> list[Neighbour]:
    """The ``k`` latest embeddings of ``model_name@model_version`` nearest to the examples (the
    best cosine over them), leaving out ``skip`` and, unless ``include_labeled``, labeled videos."""
    _, rows = execute(con, """
        WITH examples AS (SELECT unnest($examples::FLOAT[][]) AS example)
        SELECT c.video_uri, max(list_cosine_similarity(c.embedding, x.example)) AS score,
               any_value(c.video_etag) AS video_etag
        FROM latest_embeddings c CROSS JOIN examples x
        WHERE c.model_name = $name AND c.model_version = $version
          AND NOT list_contains($skip, c.video_uri)
          AND ($labeled OR c.video_uri NOT IN (SELECT video_uri FROM labels WHERE video_uri IS NOT NULL))
        GROUP BY c.video_uri
        ORDER BY score DESC, c.video_uri
        LIMIT $k""", {"examples": examples, "name": model_name, "version": model_version,
                      "skip": sorted(skip), "labeled": include_labeled, "k": k}, limits)
    return [Neighbour(uri, float(score), etag, model_name, model_version) for uri, score, etag in rows
            if score is not None]


# -- small helpers ---------------------------------------------------------------------------------
class _connection:
    """The caller's connection, or one opened (and closed) for the call."""

    def __init__(self, lake: str | os.PathLike, limits: QueryLimits, con: Any) -> None:
        self.lake, self.limits, self.given, self.con = lake, limits, con, con

    def __enter__(self) -> Any:
        if self.con is None:
            self.con = connect(self.lake, self.limits)
        return self.con

    def __exit__(self, *exc: object) -> None:
        if self.given is None and self.con is not None:
            self.con.close()


def _check_k(k: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100_000:
        raise ConfigError(f"k must be an integer from 1 to 100000, got {k!r}")


def _as_vector(query: Any) -> list[float]:
    try:
        values = np.asarray(query, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"a query must be a video URI or a vector of numbers, got {type(query).__name__}") from e
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all() or not np.any(values):
        raise ConfigError("a query vector must be one non-empty row of finite numbers, not all zero")
    return values.tolist()


def _mean_direction(vectors: list[list[float]]) -> list[float]:
    mean = np.asarray(vectors, dtype=np.float64).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm == 0.0:
        raise ConfigError("the examples' vectors cancel out (their mean is zero): use how='max'")
    return (mean / norm).tolist()


def _missing(lake: str | os.PathLike, uris: list[str], model_name: str | None, model_version: str | None) -> str:
    by = f" by {model_name or 'any model'}{'@' + model_version if model_version else ''}"
    what = f"{uris[0]} has no embedding" if len(uris) == 1 else f"none of the {len(uris)} example videos has an embedding"
    return f"{what}{by} in lake {os.fspath(lake)}: tag with `actionrec tag SOURCE --embeddings`"
