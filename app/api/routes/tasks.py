from litestar import Controller, get
from litestar.params import Parameter

from app.api.params import library_uuid
from app.api.schemas import TaskResponse, task_response
from app.api import ids
from app.domain import access, tasks
from app.domain.access import Principal


class TaskController(Controller):
    path = "/api/tasks"

    @get("/", action=access.READ)
    async def list_tasks(
        self,
        principal: Principal,
        library_id: str | None = None,
        status: str | None = None,
        task_type: str | None = None,
        limit: int = Parameter(default=100, ge=1, le=1000),
    ) -> list[TaskResponse]:
        library = library_uuid(library_id)
        rows = await tasks.list_tasks(principal, library, status, task_type, limit)
        return [task_response(r) for r in rows]

    @get("/asset/{asset_id:str}", action=access.READ)
    async def for_asset(self, principal: Principal, asset_id: str) -> list[TaskResponse]:
        rows = await tasks.tasks_for_asset(principal, ids.decode(ids.ASSET, asset_id))
        return [task_response(r) for r in rows]

    @get("/{task_id:str}", action=access.READ)
    async def get_task(self, principal: Principal, task_id: str) -> TaskResponse:
        decoded = ids.try_decode(ids.TASK, task_id)
        if decoded is None:  # not a task id: the job id tasks were once named by
            return task_response(await tasks.task_by_job_id(principal, task_id))
        return task_response(await tasks.get_task(principal, decoded))
