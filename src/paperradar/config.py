"""Settings: environment variables ``PAPERRADAR_*`` and one optional TOML file; one place for defaults.

The TOML file is ``$PAPERRADAR_CONFIG`` or ``<user config dir>/paperradar/config.toml``; keys are
the field names below (``database_url = "sqlite:///..."``). Environment variables win over it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "config_file", "default_data_dir", "load_settings"]


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("paperradar", appauthor=False))


def config_file() -> Path:
    env = os.environ.get("PAPERRADAR_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("paperradar", appauthor=False)) / "config.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAPERRADAR_", extra="ignore")

    # Storage
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""  # default: sqlite file in data_dir (see effective_database_url)

    # Sources (base URLs are config so tests point them at a local server)
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    oai_url: str = "https://oaipmh.arxiv.org/oai"
    rss_url: str = "https://rss.arxiv.org/rss"
    hf_url: str = "https://huggingface.co/api/daily_papers"
    semantic_scholar_url: str = "https://api.semanticscholar.org/graph/v1"
    openalex_url: str = "https://api.openalex.org"
    contact_email: str = "paperradar@localhost"
    request_delay_s: float = 3.0  # per host; arXiv asks for one request every 3 s
    request_timeout_s: float = 30.0
    max_retries: int = 5

    # Search and embeddings
    embed_model: str = "default"
    # Papers embedded and stored per transaction: 256 keeps both cores busy between the reads
    # and writes (SciFact's 5,183 abstracts through `bench ir`, int8 2x112 on a 2-core Zen 4:
    # 90.0-97.2 abstracts/s against 83.2-91.0 at 32); about 2.5 s of work at a time there.
    embed_batch_size: int = 256
    # Texts per model call: 8 measured fastest on 2 CPU cores (31 abstracts/s against 24 at 32,
    # whose activations spill the cache); raise it on a GPU.
    embed_model_batch: int = 8
    # Papers (a block of pks) per embedding job: a backlog bigger than one block is split into
    # one job per block, which any number of workers share.
    embed_job_papers: int = 2000
    search_mode: str = "hybrid"
    # Hybrid fusion: rrf, rrf:K or linear:W (keyword weight W; tuned on SciFact train, see notes)
    search_fusion: str = "linear:0.55"
    # IVF lists scanned per semantic query above 20,000 vectors (more: higher recall, slower;
    # 128 gives real MiniLM vectors recall@10 0.99 at 40 k, see README "Figures")
    ann_nprobe: int = 128

    # Web
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = "http://127.0.0.1:8000"
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit_per_minute: int = 600
    web_cache_s: float = 10.0  # public pages are answered from memory this long (0: off)
    # Sync requests a web process works on at once (the rest queue); 0: anyio's default, 40.
    # Fewer threads queue requests instead of time-slicing them (lower p99), but on a machine
    # shared with other processes they also get less of the CPU (fewer requests/s)
    web_threads: int = 0

    # Mail
    smtp_url: str = "smtp://127.0.0.1:25"
    mail_from: str = "paperradar <paperradar@localhost>"
    secret_key: str = ""  # generated and stored in data_dir on first use when unset
    smtp_timeout_s: float = 30.0
    smtp_rate_per_s: float = 10.0  # messages per second through one connection (0: no limit)
    smtp_connections: int = 4  # parallel SMTP connections of a digest run
    smtp_retries: int = 3  # retries of a temporary (4xx, connection) failure per message
    smtp_backoff_s: float = 2.0  # first retry delay; doubles each retry
    list_id: str = "paperradar digest"  # List-Id header (RFC 2919) text

    # Digests
    digest_lease_s: float = 300.0  # how long a runner holds a claimed digest before others may
    digest_pause_after: int = 3  # consecutive permanent (5xx) failures before pausing
    confirm_ttl_hours: float = 72.0  # confirmation links expire after this
    digest_trending_weight: float = 0.25  # share of the trending score in a personal digest
    digest_candidate_cap: int = 5000  # newest first-seen papers considered per run
    digest_search_threads: int = 2  # searches of a run's distinct interests run in parallel
    digest_batch: int = 100  # digests claimed per ledger transaction (keep x send time < lease)

    # Worker schedules (cron expressions, UTC; "" turns one off). arXiv announces Sunday-Thursday
    # at 20:00 US Eastern and its RSS feeds turn over at midnight Eastern: 05:30 UTC Monday-Friday
    # is after both in summer and in winter time. OAI-PMH records appear after the announcement.
    schedule_rss: str = "30 5 * * 1-5"
    schedule_oai: str = "0 6 * * 1-5"
    schedule_hf: str = "0 */6 * * *"
    schedule_digest: str = "*/15 * * * *"
    schedule_embed: str = "*/30 * * * *"
    # What the scheduled harvests fetch ("" skips that source): e.g. "cs.LG+stat.ML", "cs"
    rss_categories: str = ""
    oai_sets: str = ""  # comma-separated OAI sets, each harvested from its own watermark
    hf_daily: bool = True
    # Worker: seconds a claimed job is held before another worker may take it (renewed every
    # third of it while the job runs), and the idle wait between polls of the queue
    worker_lease_s: float = 120.0
    worker_poll_s: float = 5.0
    worker_keep_jobs_days: float = 7.0  # finished jobs older than this are purged (hourly)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'paperradar.db'}"

    @property
    def user_agent(self) -> str:
        from paperradar import __version__

        return f"paperradar/{__version__} (+https://github.com/paperradar; mailto:{self.contact_email})"

    def redacted(self) -> dict[str, Any]:
        """The effective settings with secrets masked, for ``paperradar config``."""
        out = self.model_dump(mode="json")
        out["database_url"] = self.effective_database_url
        if out.get("secret_key"):
            out["secret_key"] = "***"
        smtp = out.get("smtp_url", "")
        if "@" in smtp:
            scheme, _, rest = smtp.partition("://")
            out["smtp_url"] = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return out


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
