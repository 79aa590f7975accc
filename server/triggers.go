package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"herald"
)

// Triggers keeps triggers and recipients; *sqlstore.DB implements it.
type Triggers interface {
	CreateDestination(ctx context.Context, d herald.Destination) (herald.Destination, error)
	GetDestination(ctx context.Context, id string) (herald.Destination, error)
	ListDestinations(ctx context.Context) ([]herald.Destination, error)
	UpdateDestination(ctx context.Context, d herald.Destination) (herald.Destination, error)
	DeleteDestination(ctx context.Context, id string) error
	TriggersUsing(ctx context.Context, id string) ([]herald.Trigger, error)
	SaveTrigger(ctx context.Context, t herald.Trigger) (herald.Trigger, error)
	GetTrigger(ctx context.Context, dataset, id string) (herald.Trigger, error)
	ListTriggers(ctx context.Context, dataset string) ([]herald.Trigger, error)
	DeleteTrigger(ctx context.Context, dataset, id string) error
}

func handleListRecipients(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := d.Triggers.ListDestinations(r.Context())
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, list)
	})
}

func handleCreateRecipient(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := decode[herald.Destination](r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		in.ID = ""
		out, err := d.Triggers.CreateDestination(r.Context(), in)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusCreated, out)
	})
}

func handleGetRecipient(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := d.Triggers.GetDestination(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, out)
	})
}

func handleUpdateRecipient(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := decode[herald.Destination](r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		in.ID = r.PathValue("id")
		out, err := d.Triggers.UpdateDestination(r.Context(), in)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, out)
	})
}

func handleDeleteRecipient(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := d.Triggers.DeleteDestination(r.Context(), r.PathValue("id")); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleRecipientTriggers(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := d.Triggers.GetDestination(r.Context(), r.PathValue("id")); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		list, err := d.Triggers.TriggersUsing(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, list)
	})
}

// triggerFrom decodes a trigger body and makes it ready to save: the
// query_id resolved to its query (or the inline query saved, so the answer
// carries both, as Honeycomb's does), defaults applied and every rule
// checked. It reports whether the body set "disabled", which a PUT keeps
// when it does not.
func triggerFrom(d Deps, r *http.Request, key string) (herald.Trigger, bool, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return herald.Trigger{}, false, herald.Errorf(herald.EMALFORMED, "reading the body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	t, err := decode[herald.Trigger](r)
	if err != nil {
		return t, false, err
	}
	var keys map[string]json.RawMessage
	json.Unmarshal(body, &keys)
	_, setsDisabled := keys["disabled"]

	t.ID, t.DatasetSlug, t.Triggered = "", key, false
	saved := t.Query == nil && t.QueryID != ""
	if saved {
		q, err := d.Queries.GetQuery(r.Context(), key, t.QueryID)
		if err != nil {
			if herald.ErrorCode(err) == herald.ENOTFOUND {
				return t, false, herald.Invalid("query_id", "invalid", "no query %q in dataset %q", t.QueryID, key)
			}
			return t, false, err
		}
		t.Query = &q
	}
	if t, err = t.Normalize(); err != nil {
		return t, false, err
	}
	if !saved {
		q, err := d.Queries.CreateQuery(r.Context(), key, *t.Query)
		if err != nil {
			return t, false, err
		}
		t.QueryID = q.ID
	}
	return t, setsDisabled, nil
}

func handleListTriggers(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := datasetKey(r.Context(), d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		list, err := d.Triggers.ListTriggers(r.Context(), key)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, list)
	})
}

func handleCreateTrigger(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := datasetKey(r.Context(), d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		t, _, err := triggerFrom(d, r, key)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		t, err = d.Triggers.SaveTrigger(r.Context(), t)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.Header().Set("Location", "/1/triggers/"+key+"/"+t.ID)
		encode(w, http.StatusCreated, t)
	})
}

// pathTrigger returns the trigger a path's {dataset} and {id} name.
func pathTrigger(d Deps, r *http.Request) (herald.Trigger, error) {
	key, err := datasetKey(r.Context(), d, r.PathValue("dataset"))
	if err != nil {
		return herald.Trigger{}, err
	}
	return d.Triggers.GetTrigger(r.Context(), key, r.PathValue("id"))
}

func handleGetTrigger(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := pathTrigger(d, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, t)
	})
}

// handleUpdateTrigger is PUT: a full replace, except that disabled is kept
// when the body leaves it out.
func handleUpdateTrigger(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		old, err := pathTrigger(d, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		t, setsDisabled, err := triggerFrom(d, r, old.DatasetSlug)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		t.ID = old.ID
		if !setsDisabled {
			t.Disabled = old.Disabled
		}
		t, err = d.Triggers.SaveTrigger(r.Context(), t)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, t)
	})
}

func handleDeleteTrigger(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := datasetKey(r.Context(), d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if err := d.Triggers.DeleteTrigger(r.Context(), key, r.PathValue("id")); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// Evaluator runs trigger tests; *notify.Evaluator implements it.
type Evaluator interface {
	Test(ctx context.Context, t herald.Trigger) (*herald.Notification, error)
}

// EvaluationReader reads a trigger's evaluations; *sqlstore.DB implements
// it.
type EvaluationReader interface {
	Evaluations(ctx context.Context, triggerID string, limit int) ([]herald.Evaluation, error)
}

// handleTriggerEvaluations is GET /1/triggers/{dataset}/{id}/evaluations:
// the newest evaluations first (limit, default 100, at most 1000).
func handleTriggerEvaluations(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := pathTrigger(d, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
				writeError(w, r, d.Logger, herald.Invalid("limit", "invalid", "between 1 and 1000"))
				return
			}
		}
		evs, err := d.Evaluations.Evaluations(r.Context(), t.ID, limit)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, evs)
	})
}

// handleTestTrigger is POST /1/triggers/{dataset}/{id}/test: a test
// notification (is_test) to every recipient; the trigger's state is
// unchanged. Answers 202 with the notification.
func handleTestTrigger(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := pathTrigger(d, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if len(t.Recipients) == 0 {
			writeError(w, r, d.Logger, herald.Invalid("recipients", "missing", "the trigger has no recipient to test"))
			return
		}
		n, err := d.Evaluator.Test(r.Context(), t)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusAccepted, n)
	})
}
