"""What the A/B test API tests share: the operations, and making variants and tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from starlette.applications import Starlette

from app.models import ContentVariant
from tests.engagement.conftest import Tenant, state_of
from tests.helpers import gql
from tests.teams import gid

CREATE = """
mutation($i: CreateAbTestInput!) {
  createAbTest(input: $i) {
    abTest { id status metric labels trafficSplit startedAt stoppedAt }
    errors { field code message }
  }
}
"""
STOP = """
mutation($id: ID!) {
  stopAbTest(id: $id) { abTest { status startedAt stoppedAt } errors { field code } }
}
"""
TEST = """
query($id: ID!) {
  abTest(id: $id) {
    id status countedFrom countedUntil content { id }
    arms {
      label share trials successes rate lift zScore pValue probabilityToBeatControl
      variant { id label }
    }
    verdict { winner reason explanation alpha minTrialsPerArm }
  }
}
"""
LIST = """
query($ws: ID!, $c: ID, $n: Int!) {
  abTests(workspaceId: $ws, contentId: $c, first: $n) {
    edges { node { id labels arms { label trials pValue variant { label } } verdict { reason } } }
  }
}
"""
ASSIGN = """
query($id: ID!, $key: String!) {
  abTestAssignment(testId: $id, visitorKey: $key) { label share counted variant { label } }
}
"""


def auth(tenant: Tenant, role: str = "MEMBER") -> dict[str, Any]:
    return {"headers": {"Authorization": f"Bearer {tenant.keys[role]}"}}


async def add_variants(
    app: Starlette, tenant: Tenant, content_id: uuid.UUID, labels: str
) -> list[uuid.UUID]:
    ids = []
    async with state_of(app).session_factory() as session, session.begin():
        for label in labels:
            variant_id = uuid.uuid4()
            ids.append(variant_id)
            session.add(
                ContentVariant(
                    id=variant_id,
                    workspace_id=tenant.workspace_id,
                    content_id=content_id,
                    label=label,
                    title=f"Title {label}",
                    body=f"Variant {label}",
                    angle="a sharper hook",
                    based_on_version=1,
                )
            )
    return ids


async def create(
    client: httpx.AsyncClient,
    tenant: Tenant,
    content_id: uuid.UUID,
    variant_ids: list[uuid.UUID],
    metric: str = "CTR",
    split: list[float] | None = None,
    role: str = "MEMBER",
) -> dict[str, Any]:
    body = await gql(
        client,
        CREATE,
        {
            "i": {
                "contentId": gid("Content", content_id),
                "variantIds": [gid("ContentVariant", v) for v in variant_ids],
                "metric": metric,
                "trafficSplit": split,
            }
        },
        **auth(tenant, role),
    )
    return body
