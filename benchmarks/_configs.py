"""The run config the benchmarks share: N worker processes (serial for 1), a chunk size, and
the DRT refinement on or off (off by default: the benchmarks measure the rest of the pipeline)."""

from __future__ import annotations

from dataclasses import replace

from geis_pipeline.config import Config


def run_config(workers: int, *, chunk_size: int = 200, refine: bool = False) -> Config:
    """The default config with ``workers`` processes (publishing at most once a minute)."""
    config = Config()
    return replace(
        config,
        executor=replace(
            config.executor,
            kind="process" if workers > 1 else "serial",
            workers=workers,
            chunk_size=chunk_size,
            publish_interval_s=60.0,
        ),
        drt=replace(config.drt, refine=refine),
    )
