"""The classroom page with a model that fails inside a week, for the error-path browser test.

Served by ``solara run tests/browser/fault_app.py``; the failure is raised from stage 8 of week
``FAIL_WEEK`` and every later week, so the page must show it and stop while the server keeps serving.
"""

import os

from ui.app import make_page
from ui.session import ClassroomModel

FAIL_WEEK = int(os.environ.get("REE_FAIL_WEEK", "4"))
MESSAGE = "injected failure for the browser test"


class FailingModel(ClassroomModel):
    def _pipeline(self) -> None:
        if int(self.steps) >= FAIL_WEEK:
            raise RuntimeError(MESSAGE)
        super()._pipeline()


Page = make_page(FailingModel)
