"""The Review view of the desktop app (a tab of the main window, usable on its own)."""

from app.gui.review.view import ReviewView, default_session_path

__all__ = ["ReviewView", "default_session_path"]
