"""The job records: one row per job the web side started, updated by the worker; the PDF a
job produced in a row of its own. Statuses are plain strings (no Postgres enum type, so that
two processes creating the tables at once cannot trip over a type)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PENDING = "pending"
RUNNING = "running"
COMPLETE = "complete"
FAILED = "failed"
STATUSES = (PENDING, RUNNING, COMPLETE, FAILED)

PDF = "pdf"
FETCH = "fetch"


class Base(DeclarativeBase):
    pass


class ReportJob(Base):
    __tablename__ = "report_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the Celery task id too
    kind: Mapped[str] = mapped_column(String(16))  # PDF or FETCH
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReportFile(Base):
    __tablename__ = "report_files"

    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("report_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
