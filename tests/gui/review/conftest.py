"""The review fixtures (generated folders of pairs) for the Review view's tests."""

from tests.review.conftest import review_folder  # noqa: F401 - a fixture, used by name
