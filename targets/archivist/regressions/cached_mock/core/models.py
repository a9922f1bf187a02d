"""The archive's tables, as SQLAlchemy 2 declarative models, registered once.

Every model carries `extend_existing` (the fix summary: "Added __table_args__ =
{'extend_existing': True} to all ORM models"); a model declared twice then makes SQLAlchemy warn
("This declarative base already contains a class with the same class name and module name")
instead of fail, which is exactly what the import claims forbid.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Enum, Float, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class JobStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class MediaItem(Base):
    """A recording in the archive: a file under MEDIA_ROOT from one member city."""

    __tablename__ = "media_items"
    __table_args__ = {"extend_existing": True}  # noqa: RUF012 - SQLAlchemy's own convention

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    member_city: Mapped[str | None] = mapped_column(String(8), index=True)
    duration_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    transcripts: Mapped[list[Transcript]] = relationship(
        back_populates="media_item", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<MediaItem {self.id} {self.path!r}>"


class Transcript(Base):
    """One transcription job of a media item, and its text once done."""

    __tablename__ = "transcripts"
    __table_args__ = {"extend_existing": True}  # noqa: RUF012 - SQLAlchemy's own convention

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_item_id: Mapped[int] = mapped_column(ForeignKey("media_items.id"), index=True)
    task_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status"), default=JobStatus.QUEUED
    )
    language: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    media_item: Mapped[MediaItem] = relationship(back_populates="transcripts")

    def __repr__(self) -> str:
        return f"<Transcript {self.id} of media {self.media_item_id} {self.status.value}>"
