"""The ``research:`` section of a pipeline (docs/RESEARCH.md): plain pydantic models, no I/O.

Checks that need the data (more blocks than bars, a training window as long as the run) are in
`check_research`, called once the number of bars is known and before anything is written.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from admf_dask.errors import ConfigError

#: CSCV blocks beyond this make too many splits (C(20, 10) = 184,756) to enumerate
MAX_CSCV_BLOCKS = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class WalkForwardConfig(_Strict):
    """Walk-forward selection: the best in-sample portfolio of each window, traded out of sample."""

    # bars of each in-sample window (anchored: of the first one)
    train: int = Field(description="bars in each in-sample window (the first one when anchored)")
    # bars of each out-of-sample window; the windows roll by this many bars
    test: int = Field(description="bars in each out-of-sample window; windows roll by this much")
    # in-sample windows all start at bar 0 and grow
    anchored: bool = Field(False, description="in-sample windows start at bar 0 and grow")

    @field_validator("train", "test")
    @classmethod
    def _at_least_two(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"must be at least 2 bars (a Sharpe ratio needs 2 returns), got {v}")
        return v


class ResearchConfig(_Strict):
    """Probabilistic / deflated Sharpe ratios, PBO by CSCV and walk-forward selection."""

    # null: on when the run has at least 2 portfolios
    enabled: bool | None = Field(
        None, description="compute the research statistics (null: when there are ≥ 2 portfolios)"
    )
    # contiguous blocks of the returns for CSCV; every half of them is one in-sample split
    cscv_blocks: int = Field(
        16,
        description="blocks for CSCV (even, 4 to 20); C(blocks, blocks/2) in-sample splits",
    )
    # walk-forward selection; null / absent: off
    walk_forward: WalkForwardConfig | None = Field(
        None, description="walk-forward selection windows in bars (absent: off)"
    )

    @field_validator("cscv_blocks")
    @classmethod
    def _blocks(cls, v: int) -> int:
        if v < 4 or v % 2:
            raise ValueError(f"must be an even number of at least 4, got {v}")
        if v > MAX_CSCV_BLOCKS:
            raise ValueError(
                f"at most {MAX_CSCV_BLOCKS} (C({v}, {v // 2}) splits would take too long), got {v}"
            )
        return v

    @model_validator(mode="before")
    @classmethod
    def _no_null_section(cls, data):
        return {} if data is None else data

    def is_on(self, n_portfolios: int) -> bool:
        """Whether the statistics are computed for a run of ``n_portfolios``."""
        return bool(self.enabled) if self.enabled is not None else n_portfolios >= 2


def check_research(cfg: ResearchConfig, n_bars: int, where: str = "research") -> None:
    """Refuse settings that the data cannot meet (one-line `ConfigError`).

    Parameters
    ----------
    cfg : ResearchConfig
    n_bars : int
        Bars of the run (= number of metric returns).
    where : str
        Key path prefix for the message.
    """
    if cfg.cscv_blocks > n_bars:
        raise ConfigError(
            f"{where}.cscv_blocks",
            f"{cfg.cscv_blocks} blocks but the run has only {n_bars} bars",
            f"use at most {n_bars - n_bars % 2} blocks, or more bars",
        )
    wf = cfg.walk_forward
    if wf is not None and wf.train >= n_bars:
        raise ConfigError(
            f"{where}.walk_forward.train",
            f"{wf.train} bars leave no out-of-sample bar in a run of {n_bars} bars",
            f"use a train window below {n_bars} bars",
        )
