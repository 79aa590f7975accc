package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/eventstore"
)

// browser is a cookie-keeping client that does not follow redirects, so
// tests see where each answer sends the browser.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var hidden = regexp.MustCompile(`name="(token|csrf)" value="([^"]+)"`)

// field returns the value of the hidden input name in an HTML page.
func field(t *testing.T, page, name string) string {
	t.Helper()
	for _, m := range hidden.FindAllStringSubmatch(page, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	t.Fatalf("no hidden %s field in the page", name)
	return ""
}

// signIn signs b in with key and returns the overview page.
func (b *browser) signIn(key string) string {
	b.t.Helper()
	_, page := b.get("/ui/signin")
	resp, _ := b.post("/ui/signin", url.Values{"key": {key}, "token": {field(b.t, page, "token")}, "next": {"/ui/"}})
	require.Equal(b.t, http.StatusSeeOther, resp.StatusCode)
	resp, page = b.get("/ui/")
	require.Equal(b.t, http.StatusOK, resp.StatusCode, page)
	return page
}

func TestUISignInSessionsAndCSRF(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	br := newBrowser(t, b.url)

	resp, _ := br.get("/ui/sandbox?to=a%40example.com")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/signin?next=%2Fui%2Fsandbox%3Fto%3Da%2540example.com", resp.Header.Get("Location"))

	resp, page := br.get("/ui/signin")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, page, `<label for="key">API key</label>`)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	token := field(t, page, "token")

	// A form from elsewhere (no matching token) cannot sign a browser in.
	resp, page = newBrowser(t, b.url).post("/ui/signin", url.Values{"key": {b.key}, "token": {token}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, page, "The sign-in form expired")

	resp, page = br.post("/ui/signin", url.Values{"key": {"hcxck_nope"}, "token": {token}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, page, "That key is unknown or revoked.")
	require.NotContains(t, page, "hcxck_nope", "the key typed is not echoed")

	_, page = br.get("/ui/signin")
	resp, page = br.post("/ui/signin", url.Values{"key": {b.ingest}, "token": {field(t, page, "token")}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, page, "That is an ingest key")

	// Only paths under /ui/ are followed after signing in.
	_, page = br.get("/ui/signin")
	resp, _ = br.post("/ui/signin", url.Values{"key": {b.key}, "token": {field(t, page, "token")}, "next": {"//evil.example/ui/"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/", resp.Header.Get("Location"))
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "herald_session" {
			session = c
		}
	}
	require.NotNil(t, session)
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, session.SameSite)
	require.NotContains(t, session.Value, b.key, "the cookie holds a session token, not the key")

	resp, page = br.get("/ui/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, page, "<h1>Overview</h1>")
	require.Contains(t, page, `aria-current="page">Overview`)
	require.Contains(t, page, "Delivery: email", "the built-in SLOs are listed")
	require.NotContains(t, page, "Sandbox mailbox", "no built-in sandbox here")
	resp, page = br.get("/ui/sandbox")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, page, "the built-in sandbox is not running")

	// A form without the session's token is refused.
	resp, _ = br.post("/ui/signout", url.Values{})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = br.post("/ui/signout", url.Values{"csrf": {field(t, page, "csrf")}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = br.get("/ui/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "signed out")

	// Revoking the key ends its sessions.
	br.signIn(b.key)
	keys, err := b.db.ListAPIKeys(context.Background())
	require.NoError(t, err)
	for _, k := range keys {
		if k.Kind == herald.KeyConfiguration {
			require.NoError(t, b.db.RevokeAPIKey(context.Background(), k.ID))
		}
	}
	resp, _ = br.get("/ui/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	resp, css := br.get("/ui/static/herald.css")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css"))
	require.Contains(t, css, "prefers-color-scheme")
	resp, _ = br.get("/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/", resp.Header.Get("Location"))
}
