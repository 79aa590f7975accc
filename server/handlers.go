package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"herald"
	"herald/notify"
	"herald/sqlstore"
)

type keyContext struct{}

// keyFrom returns the authenticated key of the request.
func keyFrom(ctx context.Context) herald.APIKey {
	k, _ := ctx.Value(keyContext{}).(herald.APIKey)
	return k
}

// secretOf reads the API key from X-Honeycomb-Team (or Refinery's alias
// X-Hny-Team) or Authorization: Bearer.
func secretOf(r *http.Request) string {
	if k := r.Header.Get("X-Honeycomb-Team"); k != "" {
		return k
	}
	if k := r.Header.Get("X-Hny-Team"); k != "" {
		return k
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// authenticateAny admits a request with any live key.
func authenticateAny(d Deps, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := secretOf(r)
		if secret == "" {
			writeError(w, r, d.Logger, herald.Errorf(herald.EUNAUTHORIZED, "missing API key: send it as X-Honeycomb-Team or Authorization: Bearer"))
			return
		}
		k, err := d.Keys.AuthenticateAPIKey(r.Context(), secret)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyContext{}, k)))
	})
}

// authenticate admits a request with a live configuration key.
func authenticate(d Deps, next http.Handler) http.Handler {
	return authenticateAny(d, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := keyFrom(r.Context()); k.Kind != herald.KeyConfiguration {
			writeError(w, r, d.Logger, herald.Errorf(herald.EFORBIDDEN, "API key %s is an %s key; this needs a configuration key", k.ID, k.Kind))
			return
		}
		next.ServeHTTP(w, r)
	}))
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func handleReadyz(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := d.Ready(r.Context()); err != nil {
			encode(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

func handleNotFound(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, d.Logger, herald.Errorf(herald.ENOTFOUND, "no route %s %s", r.Method, r.URL.Path))
	})
}

// authResponse is GET /1/auth, in Honeycomb's shape.
type authResponse struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Name         string          `json:"name"`
	APIKeyAccess map[string]bool `json:"api_key_access"`
	Environment  struct {
		Name string `json:"name"`
		Slug string `json:"slug"`
	} `json:"environment"`
	Team struct {
		Name string `json:"name"`
		Slug string `json:"slug"`
	} `json:"team"`
}

func handleAuth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := keyFrom(r.Context())
		cfg := k.Kind == herald.KeyConfiguration
		resp := authResponse{ID: k.ID, Type: k.Kind, Name: k.Name, APIKeyAccess: map[string]bool{
			"events": true, "markers": cfg, "triggers": cfg, "boards": false, "queries": cfg, "columns": cfg,
			"createDatasets": true, "create_datasets": true, "slos": cfg, "recipients": cfg, "privateBoards": false,
		}}
		resp.Team.Name, resp.Team.Slug = "herald", "herald"
		encode(w, http.StatusOK, resp)
	})
}

// notificationResponse is a notification with its deliveries.
type notificationResponse struct {
	*herald.Notification
	Deliveries []herald.Delivery `json:"deliveries"`
}

func handleCreateNotification(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[notify.CreateRequest](r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if len(key) > 255 {
			writeError(w, r, d.Logger, herald.Invalid("Idempotency-Key", "invalid", "at most 255 characters"))
			return
		}
		n, existed, err := d.Notifier.Create(r.Context(), req, key)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if existed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		w.Header().Set("Location", "/1/notifications/"+n.ID)
		encode(w, http.StatusAccepted, notificationResponse{n, n.Deliveries})
	})
}

func handleGetNotification(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := d.Reader.GetNotification(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, notificationResponse{n, n.Deliveries})
	})
}

// deliveryResponse always lists attempts, even when there are none yet.
type deliveryResponse struct {
	*herald.Delivery
	Attempts []herald.Attempt `json:"attempts"`
}

func handleGetDelivery(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		del, err := d.Reader.GetDelivery(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, deliveryResponse{del, del.AttemptLog})
	})
}

func handleListDeliveries(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := sqlstore.DeliveryFilter{State: herald.DeliveryState(q.Get("state")), Partner: q.Get("partner"),
			Channel: q.Get("channel"), Judgement: herald.Judgement(q.Get("judgement"))}
		if f.State != "" && !f.State.Valid() {
			writeError(w, r, d.Logger, herald.Invalid("state", "invalid", "unknown delivery state %q", f.State))
			return
		}
		switch f.Judgement {
		case "", herald.JudgedGood, herald.JudgedBad, herald.JudgedExcluded:
		default:
			writeError(w, r, d.Logger, herald.Invalid("judgement", "invalid", "good, bad or excluded"))
			return
		}
		var err error
		if f.Since, err = timeParam(q.Get("since"), "since"); err == nil {
			f.Until, err = timeParam(q.Get("until"), "until")
		}
		if err == nil {
			f.JudgedSince, err = timeParam(q.Get("judged_since"), "judged_since")
		}
		if err == nil && q.Get("limit") != "" {
			f.Limit, err = strconv.Atoi(q.Get("limit"))
			if err != nil || f.Limit < 1 || f.Limit > 1000 {
				err = herald.Invalid("limit", "invalid", "want a whole number from 1 to 1000")
			}
		}
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		ds, err := d.Reader.ListDeliveries(r.Context(), f)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, map[string]any{"deliveries": ds})
	})
}

// timeParam reads RFC 3339 or Unix seconds.
func timeParam(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(s, 0), nil
	}
	return time.Time{}, herald.Invalid(name, "invalid", "want an RFC 3339 time or Unix seconds, got %q", v)
}

func handleRetryDelivery(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		del, err := d.Notifier.Retry(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusAccepted, deliveryResponse{del, del.AttemptLog})
	})
}
