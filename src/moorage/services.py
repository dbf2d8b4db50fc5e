"""Every service of one deployment, built once from the settings; the app and the CLI share it."""

from __future__ import annotations

from dataclasses import dataclass

from moorage.accounts.namespaces import NamespaceService
from moorage.accounts.quotas import QuotaService
from moorage.accounts.ratelimit import LoginRateLimiter
from moorage.accounts.tokens import AccessTokenService
from moorage.accounts.users import AccountService
from moorage.auth.controller import TokenAccessController
from moorage.auth.login import RegistryLogin
from moorage.auth.policy import AccessPolicy
from moorage.auth.signing import TokenSigner
from moorage.builds.jobs import BuildJobService
from moorage.builds.logs import BuildLogService
from moorage.builds.rule_store import BuildRuleService
from moorage.builds.secrets import SecretBox
from moorage.builds.webhooks import WebhookService
from moorage.content.archive import ArchiveService
from moorage.content.blobs import BlobService
from moorage.content.catalog import RepositoryCatalog
from moorage.content.deletion import DeletionService
from moorage.content.manifests import ManifestService
from moorage.content.uploads import UploadService
from moorage.fsck import StoreChecker
from moorage.gc import GarbageCollector
from moorage.metadata.database import Database
from moorage.secret_keys import SecretKeys
from moorage.settings import Settings
from moorage.storage import BlobStore, create_blob_store


@dataclass(frozen=True, slots=True)
class Services:
    """The deployment's database, storage and services."""

    settings: Settings
    database: Database
    store: BlobStore
    keys: SecretKeys
    uploads: UploadService
    blobs: BlobService
    manifests: ManifestService
    accounts: AccountService
    namespaces: NamespaceService
    tokens: AccessTokenService
    limiter: LoginRateLimiter
    catalog: RepositoryCatalog
    quotas: QuotaService
    deletion: DeletionService
    gc: GarbageCollector
    fsck: StoreChecker
    archives: ArchiveService
    signer: TokenSigner
    login: RegistryLogin
    policy: AccessPolicy
    access: TokenAccessController
    build_rules: BuildRuleService
    build_jobs: BuildJobService
    build_logs: BuildLogService
    build_hooks: WebhookService

    async def start(self) -> None:
        """Migrate the database, load the keys, create the first admin if the settings name one."""
        await self.database.migrate()
        await self.keys.load()
        admin, password = self.settings.admin_user, self.settings.admin_password
        if admin and password:
            await self.accounts.ensure_first_admin(admin, password.get_secret_value())

    async def close(self) -> None:
        """Release the database connections."""
        await self.database.close()


def build_services(settings: Settings) -> Services:
    """Wire every service of the deployment that `settings` describe."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    store = create_blob_store(settings)
    keys = SecretKeys(database, legacy_dir=settings.data_dir)
    quotas = QuotaService(database, settings.quotas)
    accounts = AccountService(database)
    namespaces = NamespaceService(database, quotas)
    tokens = AccessTokenService(database)
    limiter = LoginRateLimiter(
        database, settings.auth.login_failures_per_window, settings.auth.login_window_seconds
    )
    signer = TokenSigner(
        keys.token_signing_key,
        issuer=settings.auth.issuer,
        service=settings.auth.service,
        lifetime=settings.auth.token_lifetime_seconds,
    )
    login = RegistryLogin(accounts, tokens, limiter)
    build_rules = BuildRuleService(
        database,
        namespaces,
        SecretBox(keys.build_secrets_key),
        settings.builds.allow_file_urls,
    )
    build_jobs = BuildJobService(database)
    policy = AccessPolicy(namespaces)
    deletion = DeletionService(database, quotas, settings.deleted_retention)
    collector = GarbageCollector(database, store, deletion, settings.gc_grace_period)
    manifests = ManifestService(database, quotas)
    return Services(
        settings=settings,
        database=database,
        store=store,
        keys=keys,
        uploads=UploadService(database, store, settings.upload_expiry_seconds, quotas),
        blobs=BlobService(database, store, settings.gc_grace_period / 2),
        manifests=manifests,
        accounts=accounts,
        namespaces=namespaces,
        tokens=tokens,
        limiter=limiter,
        catalog=RepositoryCatalog(database, quotas),
        quotas=quotas,
        deletion=deletion,
        gc=collector,
        fsck=StoreChecker(database, store, collector),
        archives=ArchiveService(database, store, manifests, quotas),
        signer=signer,
        login=login,
        policy=policy,
        access=TokenAccessController(signer, login, policy, settings.public_url),
        build_rules=build_rules,
        build_jobs=build_jobs,
        build_logs=BuildLogService(database),
        build_hooks=WebhookService(build_rules, build_jobs),
    )
