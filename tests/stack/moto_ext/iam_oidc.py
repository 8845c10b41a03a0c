"""IAM OIDC provider client-id calls that stock moto lacks.

``AddClientIDToOpenIDConnectProvider`` and ``RemoveClientIDFromOpenIDConnectProvider``
change the audience list of an existing provider in place, as IAM does: adding an
id that is already present and removing one that is absent both succeed silently.
IAM is a query-protocol service, so the response handlers only need to exist on
moto's ``IamResponse``; the action name is dispatched to them.
"""

from __future__ import annotations

from moto.core.responses import EmptyResult
from moto.iam.models import IAMBackend
from moto.iam.responses import IamResponse


def _add_client_id(self: IAMBackend, arn: str, client_id: str) -> None:
    provider = self.get_open_id_connect_provider(arn)
    if client_id not in provider.client_id_list:
        provider.client_id_list.append(client_id)


def _remove_client_id(self: IAMBackend, arn: str, client_id: str) -> None:
    provider = self.get_open_id_connect_provider(arn)
    if client_id in provider.client_id_list:
        provider.client_id_list.remove(client_id)


def _add_client_id_response(self: IamResponse) -> EmptyResult:
    self.backend.add_client_id_to_open_id_connect_provider(
        self._get_param("OpenIDConnectProviderArn"), self._get_param("ClientID")
    )
    return EmptyResult()


def _remove_client_id_response(self: IamResponse) -> EmptyResult:
    self.backend.remove_client_id_from_open_id_connect_provider(
        self._get_param("OpenIDConnectProviderArn"), self._get_param("ClientID")
    )
    return EmptyResult()


def install() -> None:
    IAMBackend.add_client_id_to_open_id_connect_provider = _add_client_id  # type: ignore[attr-defined]
    IAMBackend.remove_client_id_from_open_id_connect_provider = _remove_client_id  # type: ignore[attr-defined]
    IamResponse.add_client_id_to_open_id_connect_provider = _add_client_id_response  # type: ignore[attr-defined]
    IamResponse.remove_client_id_from_open_id_connect_provider = _remove_client_id_response  # type: ignore[attr-defined]
