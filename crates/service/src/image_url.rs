//! Image URLs, fetched only under the operator's allow-list (`--image-url-allow`).
//!
//! A URL is fetched when it starts with an allowed prefix, compared on the parsed URL
//! (scheme, host and port exactly, then the normalised path at a segment boundary), so that
//! `https://cdn.example.com.evil.net/`, `user@host` tricks or `/faces/../admin` never pass.
//! The host is resolved once, and the connection goes to the addresses checked: a host name
//! that resolves to a loopback, private, link-local, shared or metadata address is refused;
//! only a prefix that names such an address literally (`http://10.0.0.5/faces/`) allows it.
//! No redirect is followed, no proxy is used, the bytes of one request's fetches are capped
//! at the body limit, and all of them share one deadline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::sync::Semaphore;

use crate::error::{Error, ImageError, Result};

/// Fetches in flight at once, server-wide; beyond, a request is answered `Busy`.
const MAX_CONCURRENT_FETCHES: usize = 32;

/// Whether an image string is a URL (and not base64 or a `data:` URI).
pub fn is_url(text: &str) -> bool {
    let t = text.trim_start().as_bytes();
    let starts = |p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
    starts(b"http://") || starts(b"https://")
}

/// One allowed `scheme://host[:port]/path-prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPrefix {
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

impl UrlPrefix {
    /// An `http://` or `https://` prefix with a host, without user, query or fragment.
    pub fn parse(text: &str) -> std::result::Result<UrlPrefix, String> {
        let url = Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{text:?}: only http:// and https:// prefixes"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{text:?}: a prefix carries no user or password"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{text:?}: a prefix has no query or fragment"));
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(format!("{text:?}: a prefix names a host"));
        };
        Ok(UrlPrefix {
            scheme: url.scheme().to_owned(),
            host: host.to_owned(),
            port,
            path: url.path().to_owned(),
        })
    }

    /// Whether `url` lies under this prefix. A path prefix that does not end in `/` matches
    /// whole segments only: `/faces` takes `/faces` and `/faces/a.jpg`, never `/faces-old/`.
    fn admits(&self, url: &Url) -> bool {
        let path = url.path();
        let under = match path.strip_prefix(self.path.as_str()) {
            None => false,
            Some(rest) => self.path.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        };
        url.scheme() == self.scheme
            && url.host_str() == Some(self.host.as_str())
            && url.port_or_known_default() == Some(self.port)
            && url.username().is_empty()
            && url.password().is_none()
            && under
    }
}

impl std::fmt::Display for UrlPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme, self.host, self.port, self.path
        )
    }
}

/// What the operator allows, and the limits every fetch keeps.
#[derive(Debug, Clone)]
pub struct ImageUrlConfig {
    /// Empty: every URL is refused (`image_urls_disabled`), nothing is ever fetched.
    pub allow: Vec<UrlPrefix>,
    /// All the fetches of one request must be done within this.
    pub timeout: Duration,
    /// The bytes all the fetches of one request may bring (the request body limit).
    pub max_bytes: usize,
}

impl Default for ImageUrlConfig {
    fn default() -> Self {
        ImageUrlConfig {
            allow: Vec::new(),
            timeout: Duration::from_secs(10),
            max_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Fetches allowed image URLs.
pub(crate) struct ImageFetcher {
    config: ImageUrlConfig,
    in_flight: Arc<Semaphore>,
}

impl ImageFetcher {
    pub fn new(config: ImageUrlConfig) -> Self {
        ImageFetcher {
            config,
            in_flight: Arc::new(Semaphore::new(MAX_CONCURRENT_FETCHES)),
        }
    }

    /// Whether any URL may be fetched at all.
    pub fn enabled(&self) -> bool {
        !self.config.allow.is_empty()
    }

    /// The bytes behind each URL of `urls`, fetched at once, within one deadline and one
    /// byte budget; the first failure fails them all.
    pub async fn fetch_all(&self, urls: Vec<String>) -> Result<Vec<Vec<u8>>> {
        let budget = Arc::new(AtomicUsize::new(self.config.max_bytes));
        let mut targets = Vec::with_capacity(urls.len());
        for text in &urls {
            targets.push(self.target(text)?);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (i, target) in targets.into_iter().enumerate() {
            let permit = self
                .in_flight
                .clone()
                .try_acquire_owned()
                .map_err(|_| Error::Busy)?;
            let budget = budget.clone();
            tasks.spawn(async move {
                let _permit = permit;
                (i, fetch(target, &budget).await)
            });
        }
        let mut fetched = vec![Vec::new(); urls.len()];
        let all = async {
            while let Some(joined) = tasks.join_next().await {
                let (i, bytes) = joined.map_err(Error::internal)?;
                fetched[i] = bytes?;
            }
            Ok::<_, Error>(())
        };
        match tokio::time::timeout(self.config.timeout, all).await {
            Ok(done) => done?,
            // Dropping the set aborts the fetches still running.
            Err(_) => return Err(Error::Image(ImageError::UrlUnreachable)),
        }
        Ok(fetched)
    }

    /// The parsed URL, if an allowed prefix admits it.
    fn target(&self, text: &str) -> Result<Target> {
        let url = Url::parse(text.trim()).map_err(|_| Error::Image(ImageError::UrlsDisabled))?;
        let prefix = self
            .config
            .allow
            .iter()
            .find(|p| p.admits(&url))
            .ok_or(Error::Image(ImageError::UrlsDisabled))?;
        Ok(Target {
            url,
            port: prefix.port,
        })
    }
}

/// A URL an allowed prefix admits, and its port.
struct Target {
    url: Url,
    port: u16,
}

/// The host's addresses, checked: an IP literal stands (the prefix that admitted the URL
/// names it); a host name's addresses must all be public.
async fn addresses(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| Error::Image(ImageError::UrlUnreachable))?
        .collect();
    if resolved.is_empty() {
        return Err(Error::Image(ImageError::UrlUnreachable));
    }
    if resolved.iter().any(|a| !is_public(a.ip())) {
        return Err(Error::Image(ImageError::UrlNotAllowed));
    }
    Ok(resolved)
}

/// One GET to the checked addresses: no redirect, no proxy, a 2xx only, and no more bytes
/// than are left in `budget`.
async fn fetch(target: Target, budget: &AtomicUsize) -> Result<Vec<u8>> {
    let unreachable = || Error::Image(ImageError::UrlUnreachable);
    let too_large = || Error::Image(ImageError::UrlTooLarge);
    let host = target.url.host_str().ok_or_else(unreachable)?.to_owned();
    let addrs = addresses(&host, target.port).await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .resolve_to_addrs(&host, &addrs)
        .user_agent(concat!("visage/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(Error::internal)?;
    let mut response = client.get(target.url).send().await.map_err(|e| {
        tracing::debug!(error = %e.without_url(), "image url fetch failed");
        unreachable()
    })?;
    if !response.status().is_success() {
        tracing::debug!(status = %response.status(), "image url answered without an image");
        return Err(unreachable());
    }
    let declared = response.content_length().unwrap_or(0);
    if usize::try_from(declared).map_or(true, |n| n > budget.load(Ordering::Acquire)) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| unreachable())? {
        take(budget, chunk.len()).ok_or_else(too_large)?;
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(Error::Image(ImageError::Invalid));
    }
    Ok(bytes)
}

/// Takes `n` bytes from the budget, or `None` when fewer are left.
fn take(budget: &AtomicUsize, n: usize) -> Option<()> {
    budget
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
            left.checked_sub(n)
        })
        .ok()
        .map(|_| ())
}

/// Whether an address is on the public internet: not loopback, private, link-local (the
/// cloud metadata services live there), shared (carrier-grade NAT, where some metadata
/// services are), multicast, reserved or unspecified; IPv6 forms that embed an IPv4 address
/// are judged by it.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local (AWS's fd00:ec2::254 metadata)
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)) // documentation
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    match s {
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(low(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admits(prefix: &str, url: &str) -> bool {
        let p = UrlPrefix::parse(prefix).expect("prefix");
        Url::parse(url).is_ok_and(|u| p.admits(&u))
    }

    #[test]
    fn prefixes_match_host_port_and_whole_path_segments() {
        let p = "https://cdn.example.com/faces/";
        assert!(admits(p, "https://cdn.example.com/faces/a.jpg"));
        assert!(admits(p, "https://CDN.example.com:443/faces/a.jpg?sig=1"));
        assert!(!admits(p, "http://cdn.example.com/faces/a.jpg"));
        assert!(!admits(p, "https://cdn.example.com:8443/faces/a.jpg"));
        assert!(!admits(p, "https://cdn.example.com.evil.net/faces/a.jpg"));
        assert!(!admits(p, "https://cdn.example.com@evil.net/faces/a.jpg"));
        assert!(!admits(p, "https://user@cdn.example.com/faces/a.jpg"));
        assert!(!admits(p, "https://cdn.example.com/faces/../admin"));
        assert!(!admits(p, "https://cdn.example.com/faces/%2e%2e/admin"));
        assert!(!admits(p, "https://cdn.example.com/other/a.jpg"));
        let bare = "https://cdn.example.com/faces";
        assert!(admits(bare, "https://cdn.example.com/faces/a.jpg"));
        assert!(!admits(bare, "https://cdn.example.com/faces-old/a.jpg"));
        assert!(admits(
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8081/x.jpg"
        ));
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for bad in [
            "cdn.example.com/faces",
            "ftp://cdn.example.com/",
            "https://user:pw@cdn.example.com/",
            "https://cdn.example.com/?q=1",
            "file:///etc/",
        ] {
            assert!(UrlPrefix::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ] {
            let ip: IpAddr = private.parse().expect("ip");
            assert!(!is_public(ip), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = public.parse().expect("ip");
            assert!(is_public(ip), "{public}");
        }
    }

    #[test]
    fn urls_are_told_from_base64() {
        assert!(is_url("https://x/y.jpg"));
        assert!(is_url("  HTTP://x/y.jpg"));
        assert!(!is_url("data:image/jpeg;base64,AAAA"));
        assert!(!is_url("/9j/4AAQSkZJRg"));
    }

    #[test]
    fn the_byte_budget_is_shared_and_never_overdrawn() {
        let budget = AtomicUsize::new(10);
        assert!(take(&budget, 6).is_some());
        assert!(take(&budget, 5).is_none());
        assert!(take(&budget, 4).is_some());
        assert!(take(&budget, 1).is_none());
    }
}
