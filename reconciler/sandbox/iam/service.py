"""The methods of google.iam.admin.v1.IAM the emulator answers: service accounts and their IAM policies."""

from __future__ import annotations

import base64
from collections.abc import Callable

from google.cloud.iam_admin_v1 import types
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2

from reconciler.sandbox.iam import accounts, policies
from reconciler.sandbox.base.grpc_errors import GrpcApiError
from reconciler.sandbox.base.grpcbase import GrpcEmulator, Method
from reconciler.sandbox.iam.store import AccountStore

SERVICE = "google.iam.admin.v1.IAM"
API_SERVICE = "iam.googleapis.com"
DEFAULT_PAGE_SIZE = 20  # the API reference: "The default is 20, and the maximum is 100."
MAX_PAGE_SIZE = 100
# How IAM words the errors a fault rule answers, where it has its own words.
MESSAGES = {"ABORTED": policies.CONCURRENT_CHANGE,
            "RESOURCE_EXHAUSTED": f"Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of "
                                  f"service '{API_SERVICE}'."}


class IamService:
    def __init__(self, store: AccountStore, on_deleted: Callable[[dict], None] | None = None):
        self.store = store
        # Told of each deleted account, so that other emulators' policies show its members as deleted (the Resource
        # Manager's, in the sandbox).
        self._on_deleted = on_deleted

    # --- service accounts --------------------------------------------------------------------------------------

    def create(self, request: types.CreateServiceAccountRequest) -> types.ServiceAccount:
        project = accounts.project_of(request.name)
        accounts.check_account_id(request.account_id)
        display_name = request.service_account.display_name
        description = request.service_account.description
        accounts.check_text_fields(display_name, description)
        with self.store.lock:  # only display_name and description are the caller's; the rest the server fills in
            email = accounts.email_of(project, request.account_id)
            if self.store.find(email) is not None:
                raise accounts.already_exists(project, request.account_id, email)
            account = accounts.new_account(project, request.account_id, display_name, description)
            self.store.put(account)
        return accounts.to_message(account)

    def get(self, request: types.GetServiceAccountRequest) -> types.ServiceAccount:
        return accounts.to_message(self._resolve(request.name, "iam.serviceAccounts.get"))

    def list_accounts(self, request: types.ListServiceAccountsRequest) -> types.ListServiceAccountsResponse:
        project = accounts.project_of(request.name)
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        listed = self.store.in_project(project)
        start = _page_start(request.page_token, listed)
        page = listed[start:start + page_size]
        more = start + page_size < len(listed)
        return types.ListServiceAccountsResponse(
            accounts=[accounts.to_message(account) for account in page],
            next_page_token=_page_token(page[-1]["email"]) if more else "")

    def patch(self, request: types.PatchServiceAccountRequest) -> types.ServiceAccount:
        fields = accounts.update_mask_fields(list(request.update_mask.paths))
        sent = request.service_account
        with self.store.lock:
            account = self._resolve(sent.name, "iam.serviceAccounts.update")
            account.update({field: getattr(sent, field) for field in fields})
            accounts.check_text_fields(account["display_name"], account["description"])
            self.store.put(account)
        # "Only the fields specified in the request are guaranteed to be returned in the response": so only they are.
        return accounts.to_message(account, fields)

    def update(self, request: types.ServiceAccount) -> types.ServiceAccount:
        """Deprecated in favour of patch; "You can update only the display_name field"."""
        with self.store.lock:
            account = self._resolve(request.name, "iam.serviceAccounts.update")
            accounts.check_text_fields(request.display_name, account["description"])
            account["display_name"] = request.display_name
            self.store.put(account)
        return accounts.to_message(account)

    def delete(self, request: types.DeleteServiceAccountRequest) -> empty_pb2.Empty:
        with self.store.lock:
            account = self._resolve(request.name, "iam.serviceAccounts.delete")
            self.store.delete(account)
            # IAM keeps a deleted principal's bindings, named `deleted:serviceAccount:EMAIL?uid=UNIQUE_ID`, until it
            # purges them: a new account with the same email is not granted what the old one was.
            member = f"serviceAccount:{account['email']}"
            for unique_id, policy_json in self.store.policies_naming(member):
                policy = policies.stored(policy_json)
                for binding in policy.bindings:
                    renamed = [policies.deleted_form(account) if name == member else name for name in binding.members]
                    binding.ClearField("members")
                    binding.members.extend(renamed)
                self.store.put_policy(unique_id, policies.to_json(policies.written(list(policy.bindings),
                                                                                  policy.etag)))
        if self._on_deleted is not None:
            self._on_deleted(account)
        return empty_pb2.Empty()

    # --- the account's own IAM policy --------------------------------------------------------------------------

    def get_iam_policy(self, request: iam_policy_pb2.GetIamPolicyRequest) -> policy_pb2.Policy:
        policies.check_requested_version(request.options.requested_policy_version)
        account = self._resolve(request.resource, "iam.serviceAccounts.getIamPolicy")
        return policies.stored(self.store.policy(account["unique_id"]))

    def set_iam_policy(self, request: iam_policy_pb2.SetIamPolicyRequest) -> policy_pb2.Policy:
        # Without an update mask the API applies "bindings, etag"; a mask without bindings keeps them.
        mask = set(request.update_mask.paths) or {"bindings", "etag"}
        with self.store.lock:
            account = self._resolve(request.resource, "iam.serviceAccounts.setIamPolicy")
            current = policies.stored(self.store.policy(account["unique_id"]))
            policies.check_etag(current, request.policy.etag)
            bindings = list(request.policy.bindings if "bindings" in mask else current.bindings)
            new_policy = policies.written(bindings, current.etag)
            self.store.put_policy(account["unique_id"], policies.to_json(new_policy))
        return new_policy

    def _resolve(self, name: str, permission: str) -> dict:
        project, key = accounts.parse_name(name)
        account = self.store.find(key)
        if account is not None and project in ("-", account["project_id"]):
            return account
        raise accounts.permission_denied(permission) if project == "-" else accounts.not_found()


def build_emulator(store: AccountStore, on_deleted: Callable[[dict], None] | None = None) -> GrpcEmulator:
    service = IamService(store, on_deleted)
    emulator = GrpcEmulator("iam", API_SERVICE, MESSAGES)
    emulator.add_service(SERVICE, {rpc: Method(answer, _decoder(request_type), _encoder(reply_type), read)
                                   for rpc, answer, request_type, reply_type, read in (
        ("CreateServiceAccount", service.create, types.CreateServiceAccountRequest, types.ServiceAccount, False),
        ("GetServiceAccount", service.get, types.GetServiceAccountRequest, types.ServiceAccount, True),
        ("ListServiceAccounts", service.list_accounts, types.ListServiceAccountsRequest,
         types.ListServiceAccountsResponse, True),
        ("PatchServiceAccount", service.patch, types.PatchServiceAccountRequest, types.ServiceAccount, False),
        ("UpdateServiceAccount", service.update, types.ServiceAccount, types.ServiceAccount, False),
        ("DeleteServiceAccount", service.delete, types.DeleteServiceAccountRequest, empty_pb2.Empty, False),
        ("GetIamPolicy", service.get_iam_policy, iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy, True),
        ("SetIamPolicy", service.set_iam_policy, iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy, False),
    )})
    return emulator


def _decoder(message_type: type) -> Callable[[bytes], object]:
    """The client's own codecs: proto-plus types (google.cloud.iam_admin_v1.types) or plain protobuf (google.iam.v1)."""
    return getattr(message_type, "deserialize", None) or message_type.FromString


def _encoder(message_type: type) -> Callable[[object], bytes]:
    return getattr(message_type, "serialize", None) or message_type.SerializeToString


def _page_token(last_email: str) -> str:
    return base64.urlsafe_b64encode(last_email.encode()).decode()


def _page_start(token: str, listed: list[dict]) -> int:
    """Pages resume after the last email sent, so an account created or deleted meanwhile shifts nothing."""
    if not token:
        return 0
    try:
        last_email = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise GrpcApiError("INVALID_ARGUMENT", f"Invalid page token {token!r}.") from None
    return sum(account["email"] <= last_email for account in listed)
