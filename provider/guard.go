package provider

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// The SSRF guard: receivers whose address a user chose (webhooks, Slack
// incoming webhooks) are dialled only when the address, resolved, is not
// loopback, private, link-local, CGNAT, multicast or unspecified — unless
// it is inside a network the operator allowed. The check runs at dial time,
// after DNS, so a name cannot resolve one way when checked and another when
// used.

// GuardedClient returns a client whose every connection passes the SSRF guard,
// that uses no proxy (the guard would check the proxy, not the receiver) and
// follows no redirect. It is not otelhttp's: that would put the full URL,
// query secrets included, on the span.
func GuardedClient(timeout time.Duration, allow []netip.Prefix) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("dial %s: unparsable address", address)
			}
			return CheckAddress(ap.Addr(), allow)
		}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = dialer.DialContext
	tr.MaxIdleConnsPerHost = 8
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ForbiddenAddressError reports an address the SSRF guard refused.
type ForbiddenAddressError struct {
	Addr netip.Addr
	// Range names why: "loopback", "private", "link-local", "unspecified",
	// "multicast" or "cgnat".
	Range string
}

func (e *ForbiddenAddressError) Error() string {
	return fmt.Sprintf("%s is a %s address and not in allow_networks", e.Addr, e.Range)
}

var (
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
)

// CheckAddress returns a *ForbiddenAddressError when addr is loopback,
// private (RFC 1918, fc00::/7), link-local (169.254.0.0/16, fe80::/10),
// unspecified (or in 0.0.0.0/8), multicast or CGNAT (100.64.0.0/10) and not
// inside one of allow; nil otherwise. IPv4-mapped IPv6 addresses are judged
// as the IPv4 address they carry.
func CheckAddress(addr netip.Addr, allow []netip.Prefix) error {
	addr = addr.Unmap()
	for _, p := range allow {
		if p.Contains(addr) {
			return nil
		}
	}
	var class string
	switch {
	case addr.IsLoopback():
		class = "loopback"
	case addr.IsPrivate():
		class = "private"
	case addr.IsLinkLocalUnicast():
		class = "link-local"
	case addr.IsUnspecified() || thisNetwork.Contains(addr):
		class = "unspecified"
	case addr.IsMulticast():
		class = "multicast"
	case cgnat.Contains(addr):
		class = "cgnat"
	default:
		return nil
	}
	return &ForbiddenAddressError{Addr: addr, Range: class}
}
