package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"herald"
	"herald/sandbox"
	"herald/server/chart"
	"herald/sqlstore"
)

// The web UI: server-rendered pages under /ui/, signed in with an API key
// that starts a session (a cookie holding a random token, stored hashed),
// every form carrying the session's CSRF token. See docs/ui.md.

//go:embed ui
var uiFS embed.FS

// UISessions keeps the web UI's sessions; *sqlstore.DB implements it.
type UISessions interface {
	// CreateSession starts a session for key keyID lasting ttl.
	CreateSession(ctx context.Context, keyID string, ttl time.Duration) (string, sqlstore.Session, error)
	// Session returns the live session with this token, or EUNAUTHORIZED.
	Session(ctx context.Context, token string) (sqlstore.Session, error)
	DeleteSession(ctx context.Context, token string) error
}

// UIStore answers the UI's lists and charts; *sqlstore.DB implements it.
type UIStore interface {
	DeliverySeries(ctx context.Context, from, to time.Time, step time.Duration) ([]sqlstore.JudgementBucket, error)
	// Activity returns a page of deliveries, newest first; EINVALID for a
	// filter it cannot apply.
	Activity(ctx context.Context, f sqlstore.ActivityFilter) (sqlstore.ActivityPage, error)
	// Transitions returns a delivery's state changes, oldest first.
	Transitions(ctx context.Context, deliveryID string) ([]sqlstore.Transition, error)
	// PartnerEvents returns the partner events matched to a delivery, in
	// the order received.
	PartnerEvents(ctx context.Context, deliveryID string) ([]sqlstore.ReceivedEvent, error)
}

// Mailbox lists what the built-in sandbox's partners "delivered";
// *sandbox.Server implements it.
type Mailbox interface {
	Messages(f sandbox.MessageFilter) []sandbox.Message
}

const (
	sessionCookie = "herald_session"
	signinCookie  = "herald_signin"
	sessionTTL    = 12 * time.Hour
)

type sessionContext struct{}

func sessionFrom(ctx context.Context) sqlstore.Session {
	s, _ := ctx.Value(sessionContext{}).(sqlstore.Session)
	return s
}

// page is what every page template gets.
type page struct {
	Title string
	// Nav names the section of the navigation to mark as current.
	Nav     string
	Key     herald.APIKey
	CSRF    string
	Sandbox bool
	// Flash is a one-line message from the action that led here; Alert
	// marks it as an error, announced at once.
	Flash string
	Alert bool
	Data  any
}

// uiTemplates holds one template set per page, each with the layout.
type uiTemplates map[string]*template.Template

var uiFuncs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"tsp": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"dur": func(d time.Duration) string {
		switch {
		case d < time.Millisecond:
			return d.String()
		case d < time.Second:
			return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
		}
		return d.Round(10 * time.Millisecond).String()
	},
	"pct": func(f float64) string {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "—"
		}
		return strconv.FormatFloat(f, 'f', 2, 64) + " %"
	},
	"num": func(f float64) string {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "—"
		}
		return strconv.FormatFloat(f, 'g', 4, 64)
	},
	// with returns u's query with key set to value (empty removes it), for
	// links that change one filter.
	"with": func(u *url.URL, kv ...string) string {
		q := u.Query()
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				q.Del(kv[i])
			} else {
				q.Set(kv[i], kv[i+1])
			}
		}
		return u.Path + "?" + q.Encode()
	},
	"chartCSS": func() template.CSS { return chart.Stylesheet },
}

// parseUITemplates parses the layout with each page of ui/templates/pages.
func parseUITemplates() (uiTemplates, error) {
	pages, err := fs.Glob(uiFS, "ui/templates/pages/*.html")
	if err != nil {
		return nil, err
	}
	out := uiTemplates{}
	for _, p := range pages {
		t, err := template.New("layout.html").Funcs(uiFuncs).ParseFS(uiFS, "ui/templates/layout.html", p)
		if err != nil {
			return nil, fmt.Errorf("server: ui template %s: %w", p, err)
		}
		out[strings.TrimSuffix(path.Base(p), ".html")] = t
	}
	return out, nil
}

// securityHeaders are sent with every page: nothing from elsewhere, no
// framing, no referrer beyond herald.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// render writes a page with the session's key and CSRF token.
func (d Deps) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t := d.templates[name]
	if t == nil {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	sess := sessionFrom(r.Context())
	p.Key, p.CSRF, p.Sandbox = sess.Key, sess.CSRF, d.Mailbox != nil
	if p.Flash == "" {
		p.Flash = r.URL.Query().Get("flash")
	}
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		d.Logger.Error("ui: render failed", "page", name, "error", err)
		http.Error(w, "the page could not be drawn; see herald's log", http.StatusInternalServerError)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// uiError renders an error as a page, with the status herald's error code
// maps to.
func (d Deps) uiError(w http.ResponseWriter, r *http.Request, err error) {
	st, ok := statuses[herald.ErrorCode(err)]
	var he *herald.Error
	msg := "Something went wrong inside herald; its log has the details."
	if ok && errors.As(err, &he) && he.Code != herald.EINTERNAL {
		msg = he.Message
	} else {
		st = statuses[herald.EINTERNAL]
		d.Logger.ErrorContext(r.Context(), "ui: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	d.render(w, r, st.status, "error", page{Title: st.title, Data: msg})
}

// signedIn admits a request with a live session, and for anything but GET
// and HEAD the session's CSRF token in the form field "csrf"; others are
// sent to the sign-in page (GET) or refused (403).
func signedIn(d Deps, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		var sess sqlstore.Session
		if err == nil {
			sess, err = d.Sessions.Session(r.Context(), c.Value)
		}
		if err != nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/ui/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			securityHeaders(w)
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead &&
			subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) != 1 {
			securityHeaders(w)
			http.Error(w, "the form's CSRF token is missing or stale: reload the page and try again", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionContext{}, sess)))
	})
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// safeNext returns where to go after signing in: a path under /ui/, or
// the overview.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/ui/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return "/ui/"
}

func cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/ui/", MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode}
}

// handleSignin is GET and POST /ui/signin. The form carries a token also
// set as a cookie, so no other site can sign a browser in.
func handleSignin(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next := safeNext(r.FormValue("next"))
		if r.Method == http.MethodGet {
			token := randomToken()
			http.SetCookie(w, cookie(r, signinCookie, token, 600))
			d.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Data: map[string]string{"Token": token, "Next": next}})
			return
		}
		fail := func(status int, msg string) {
			token := randomToken()
			http.SetCookie(w, cookie(r, signinCookie, token, 600))
			d.render(w, r, status, "signin", page{Title: "Sign in", Flash: msg, Alert: true, Data: map[string]string{"Token": token, "Next": next}})
		}
		c, err := r.Cookie(signinCookie)
		if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("token"))) != 1 {
			fail(http.StatusForbidden, "The sign-in form expired. Try again.")
			return
		}
		k, err := d.Keys.AuthenticateAPIKey(r.Context(), strings.TrimSpace(r.PostFormValue("key")))
		switch {
		case err != nil && herald.ErrorCode(err) == herald.EUNAUTHORIZED:
			fail(http.StatusUnauthorized, "That key is unknown or revoked.")
			return
		case err != nil:
			d.uiError(w, r, err)
			return
		case k.Kind != herald.KeyConfiguration:
			fail(http.StatusForbidden, "That is an ingest key: the UI needs a configuration key.")
			return
		}
		token, _, err := d.Sessions.CreateSession(r.Context(), k.ID, sessionTTL)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		http.SetCookie(w, cookie(r, signinCookie, "", -1))
		http.SetCookie(w, cookie(r, sessionCookie, token, int(sessionTTL/time.Second)))
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// handleSignout is POST /ui/signout.
func handleSignout(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			if err := d.Sessions.DeleteSession(r.Context(), c.Value); err != nil {
				d.uiError(w, r, err)
				return
			}
		}
		http.SetCookie(w, cookie(r, sessionCookie, "", -1))
		http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
	})
}

// handleStatic serves the UI's stylesheet and script.
func handleStatic() http.Handler {
	sub, _ := fs.Sub(uiFS, "ui/static")
	files := http.StripPrefix("/ui/static/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// handleMailbox is GET /ui/sandbox: what the built-in sandbox's partners
// "delivered", newest first, searchable by recipient and text.
func handleMailbox(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Mailbox == nil {
			d.uiError(w, r, herald.Errorf(herald.ENOTFOUND, "the built-in sandbox is not running: herald sends through real partners"))
			return
		}
		q := r.URL.Query()
		msgs := d.Mailbox.Messages(sandbox.MessageFilter{To: q.Get("to"), Text: q.Get("q")})
		// Newest first, at most 200.
		out := make([]sandbox.Message, 0, min(len(msgs), 200))
		for i := len(msgs) - 1; i >= 0 && len(out) < 200; i-- {
			out = append(out, msgs[i])
		}
		d.render(w, r, http.StatusOK, "mailbox", page{Title: "Sandbox mailbox", Nav: "sandbox",
			Data: map[string]any{"Messages": out, "Total": len(msgs), "To": q.Get("to"), "Q": q.Get("q")}})
	})
}
