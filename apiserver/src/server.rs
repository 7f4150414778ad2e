//! Start-up and the listener. The listener is one seam ([`serve`]) so that
//! TLS can wrap it later without touching the API code.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::allocator::ServiceAllocator;
use crate::config::Config;
use crate::handler::{dispatch, Api};
use crate::openapi::OpenApi;
use crate::registry::Registry;
use crate::storage::embedded::{EmbeddedOptions, EmbeddedStore};
use crate::storage::{etcd::EtcdStore, Store};
use crate::watch_cache::WatchCache;

/// Connect the store and build the API (no listener yet).
pub async fn build(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Arc<Api>> {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let prefix = config.etcd_prefix.trim_end_matches('/').to_string();
    let cache = WatchCache::start(store.clone(), format!("{prefix}/"), config.watch_cache_size)
        .await
        .context("loading the watch cache")?;
    let services = ServiceAllocator::new(
        &config.service_cluster_ip_range,
        &config.service_node_port_range,
    )
    .context("service ranges")?;
    let modes = crate::authz::parse_modes(&config.authorization_mode)?;
    let authz = crate::authz::Authorizer::new(modes, &cache, &prefix, registry);
    let root_ca = crate::serviceaccount::root_ca::bundle(config, IpAddr::V4(services.first_ip))
        .context("the CA bundle for pods")?;
    let api = Arc::new(Api {
        registry,
        store,
        cache,
        prefix,
        openapi: OpenApi::new(registry),
        services,
        metrics: Default::default(),
        toleration_seconds: crate::admission::DefaultTolerationSeconds {
            not_ready: config.default_not_ready_toleration_seconds,
            unreachable: config.default_unreachable_toleration_seconds,
        },
        authz,
        root_ca,
        kubelet: crate::kubelet_client::KubeletClient::from_config(config)
            .context("the kubelet client")?,
        tokens: Arc::new(
            crate::serviceaccount::Tokens::from_config(config)
                .context("service account token keys")?,
        ),
    });
    crate::admission::rebuild_allocations(&api)
        .await
        .context("reading Services")?;
    Ok(api)
}

fn router(api: Arc<Api>) -> Router {
    Router::new().fallback(move |req| dispatch(api.clone(), req))
}

/// Serve the API over plain HTTP on `listener` until the process ends.
pub async fn serve(api: Arc<Api>, listener: TcpListener) -> anyhow::Result<()> {
    axum::serve(listener, router(api))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")
}

/// SIGTERM or SIGINT: stop accepting, let requests in flight finish.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
    // Watches never end by themselves: give requests a moment, then go.
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        std::process::exit(0);
    });
}

/// The store the flags name: etcd with --etcd-servers, else the embedded
/// store in --data-dir.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if !config.etcd_servers.is_empty() {
        let etcd = EtcdStore::connect(&config.etcd_servers)
            .await
            .with_context(|| format!("connecting to etcd at {:?}", config.etcd_servers))?;
        return Ok(Arc::new(etcd));
    }
    let Some(dir) = config.data_dir.clone() else {
        anyhow::bail!("no store: give --etcd-servers, or --data-dir for the embedded store");
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let shown = dir.display().to_string();
    let store =
        tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir, EmbeddedOptions::default()))
            .await?
            .with_context(|| format!("opening the embedded store in {shown}"))?;
    tracing::info!(dir = shown, "using the embedded store");
    Ok(Arc::new(store))
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let api = build(&config, store).await?;
    if config.port == 0 && config.secure_port == 0 {
        anyhow::bail!("neither --secure-port nor --port: nothing to serve on");
    }
    if config.port != 0 {
        crate::tls::check_insecure_address(config.insecure_bind_address)?;
    }
    let advertise = config
        .advertise_address
        .unwrap_or(if config.secure_port != 0 {
            config.bind_address
        } else {
            config.insecure_bind_address
        });
    let public_port = if config.secure_port != 0 {
        config.secure_port
    } else {
        config.port
    };
    crate::bootstrap::run(&api, advertise, public_port)
        .await
        .map_err(|e| {
            anyhow::anyhow!("creating the bootstrap objects: {} ({})", e.message, e.code)
        })?;
    crate::serviceaccount::root_ca::publish_all(&api)
        .await
        .map_err(|e| anyhow::anyhow!("publishing kube-root-ca.crt: {} ({})", e.message, e.code))?;
    crate::authz::policy::reconcile(&api).await.map_err(|e| {
        anyhow::anyhow!(
            "creating the bootstrap RBAC policy: {} ({})",
            e.message,
            e.code
        )
    })?;
    if let Some(every) = config.compaction_interval()? {
        tokio::spawn(compact_periodically(api.store.clone(), every));
    }
    let secure = if config.secure_port != 0 {
        let tls = crate::tls::server_config(&config, IpAddr::V4(api.services.first_ip))?;
        let addr = SocketAddr::new(config.bind_address, config.secure_port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tracing::info!(%addr, "serving the Kubernetes API over HTTPS");
        Some((listener, tls))
    } else {
        None
    };
    let plain = if config.port != 0 {
        let addr = SocketAddr::new(config.insecure_bind_address, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tracing::warn!(%addr, "serving the Kubernetes API over plain HTTP: this port bypasses authentication and authorization");
        Some(listener)
    } else {
        None
    };
    if let Some((listener, tls)) = secure {
        let service_accounts = crate::serviceaccount::TokenAuthenticator::new(
            api.tokens.clone(),
            api.cache.clone(),
            &api.prefix,
        );
        let authn = crate::authn::Authenticator::new(
            config.client_ca_file.is_some(),
            config.token_auth_file.as_deref(),
        )?
        .with_service_accounts(service_accounts);
        if !authn.enabled() {
            tracing::warn!(
                "no --client-ca-file or --token-auth-file: the secure port accepts every request"
            );
        }
        tokio::spawn(crate::tls::serve(
            router(api.clone()),
            listener,
            tls,
            Arc::new(authn),
        ));
    }
    match plain {
        Some(listener) => serve(api, listener).await,
        None => {
            shutdown_signal().await;
            Ok(())
        }
    }
}

/// Compact the store every `every`, to the revision seen one period before
/// (upstream's --etcd-compaction-interval), so history stays bounded while
/// recent resourceVersions stay usable.
async fn compact_periodically(store: Arc<dyn Store>, every: std::time::Duration) {
    let mut previous = 0;
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if previous > 0 {
            if let Err(e) = store.compact(previous).await {
                tracing::warn!(error = %e, revision = previous, "compaction failed");
            }
        }
        match store.current_revision().await {
            Ok(r) => previous = r,
            Err(e) => tracing::warn!(error = %e, "reading the store revision"),
        }
    }
}
