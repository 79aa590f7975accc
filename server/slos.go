package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"herald"
	"herald/slo"
)

// SLOs keeps SLOs and their burn alerts; *sqlstore.DB implements it.
type SLOs interface {
	SaveSLO(ctx context.Context, o herald.SLO, alerts []herald.BurnAlert) (herald.SLO, []herald.BurnAlert, error)
	GetSLO(ctx context.Context, dataset, id string) (herald.SLO, error)
	ListSLOs(ctx context.Context, dataset string) ([]herald.SLO, error)
	DeleteSLO(ctx context.Context, dataset, id string) error
	SaveBurnAlert(ctx context.Context, a herald.BurnAlert) (herald.BurnAlert, error)
	GetBurnAlert(ctx context.Context, dataset, id string) (herald.BurnAlert, error)
	ListBurnAlerts(ctx context.Context, dataset, sloID string) ([]herald.BurnAlert, error)
	DeleteBurnAlert(ctx context.Context, dataset, id string) error
	BurnAlertEvents(ctx context.Context, sloID string, limit int) ([]herald.BurnAlertEvent, error)
}

// SLOEngine reports on SLOs and checks burn alerts as the engine will run
// them; *notify.SLOs implements it.
type SLOEngine interface {
	Status(ctx context.Context, o herald.SLO) (herald.SLOStatus, error)
	CheckAlert(ctx context.Context, o herald.SLO, a herald.BurnAlert) error
	// BurnDown returns the budget left at points instants of o's current
	// period, oldest first (the web UI's burn-down chart).
	BurnDown(ctx context.Context, o herald.SLO, points int) ([]herald.BudgetPoint, error)
}

// sloBody is an SLO as clients send it, with herald's two additions for
// the burn alerts a new SLO gets.
type sloBody struct {
	herald.SLO
	// DefaultBurnAlerts, true unless set false, gives a new SLO the
	// default multiwindow alerts (docs/slos.md).
	DefaultBurnAlerts *bool `json:"default_burn_alerts,omitempty"`
	// AlertRecipients are the recipients of those default alerts.
	AlertRecipients []herald.TriggerRecipient `json:"alert_recipients,omitempty"`
}

// sloView is an SLO as herald answers it: with its status when detailed,
// and warnings about it when created or changed.
type sloView struct {
	herald.SLO
	*herald.SLOStatus
	Warnings []string `json:"warnings,omitempty"`
}

// sloDataset returns the dataset slug a path's {dataset} names: an event
// dataset, or the built-in delivery SLOs' __deliveries__.
func sloDataset(ctx context.Context, d Deps, name string) (string, error) {
	if name == herald.DeliveryDataset {
		return name, nil
	}
	return datasetKey(ctx, d, name)
}

func handleListSLOs(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := sloDataset(r.Context(), d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if key == herald.AllDatasets {
			key = "" // every SLO
		}
		list, err := d.SLOs.ListSLOs(r.Context(), key)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, list)
	})
}

// checkSLI refuses an SLI that is not a boolean derived column of the
// dataset, and returns warnings when the last 7 days' traffic would make
// the SLO's alerts coarse or trip a page on one failure.
func checkSLI(ctx context.Context, d Deps, o herald.SLO, alerts []herald.BurnAlert, now time.Time) ([]string, error) {
	const week = 7 * 24 * time.Hour
	counts, err := d.Events.SLICounts(ctx, o.Dataset, o.SLI.Alias, now.Add(-week), now)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, c := range counts {
		total += c.Good + c.Bad
	}
	if total == 0 {
		return []string{"no events in the last 7 days qualify for the SLI: the SLO will report no_events until some do"}, nil
	}
	s := slo.FromHerald(o, alerts)
	s.ExpectedEventsPerHour = float64(total) / week.Hours()
	warnings, err := slo.Validate(s)
	if err != nil {
		return nil, slo.Check(o, alerts)
	}
	return warnings, nil
}

func handleCreateSLO(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		key, err := sloDataset(ctx, d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if key == herald.DeliveryDataset {
			writeError(w, r, d.Logger, herald.Errorf(herald.ECONFLICT, "%s holds herald's built-in delivery SLOs; create SLOs in an event dataset", key))
			return
		}
		in, err := decode[sloBody](r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		o := in.SLO
		o.ID, o.Dataset, o.Channel = "", key, ""
		if o, err = o.Normalize(); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		var alerts []herald.BurnAlert
		var notes []string
		if in.DefaultBurnAlerts == nil || *in.DefaultBurnAlerts {
			alerts, notes = slo.DefaultBurnAlerts(o)
			for i := range alerts {
				alerts[i].Recipients = append([]herald.TriggerRecipient(nil), in.AlertRecipients...)
				if alerts[i], err = alerts[i].Normalize(o.Period(), false); err != nil {
					writeError(w, r, d.Logger, err)
					return
				}
			}
			if len(alerts) > 0 && len(in.AlertRecipients) == 0 {
				notes = append(notes, "the default burn alerts have no recipients: they are evaluated and shown, but tell no one until you add recipients")
			}
		} else if len(in.AlertRecipients) > 0 {
			writeError(w, r, d.Logger, herald.Invalid("alert_recipients", "invalid", "only with the default burn alerts"))
			return
		}
		warnings, err := checkSLI(ctx, d, o, alerts, d.Clock.Now())
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		o, _, err = d.SLOs.SaveSLO(ctx, o, alerts)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.Header().Set("Location", "/1/slos/"+key+"/"+o.ID)
		encode(w, http.StatusCreated, sloView{SLO: o, Warnings: append(notes, warnings...)})
	})
}

// pathSLO returns the SLO a path's {dataset} and {id} name.
func pathSLO(d Deps, r *http.Request) (herald.SLO, error) {
	key, err := sloDataset(r.Context(), d, r.PathValue("dataset"))
	if err != nil {
		return herald.SLO{}, err
	}
	return d.SLOs.GetSLO(r.Context(), key, r.PathValue("id"))
}

// handleGetSLO is GET /1/slos/{dataset}/{id}; with ?detailed it adds the
// SLO's compliance, budget remaining, 4-hour burn rate, status and its
// burn alerts' states.
func handleGetSLO(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := pathSLO(d, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		view := sloView{SLO: o}
		if detailed(r) {
			st, err := d.SLOEngine.Status(r.Context(), o)
			if err != nil {
				writeError(w, r, d.Logger, err)
				return
			}
			view.SLOStatus = &st
		}
		encode(w, http.StatusOK, view)
	})
}

// detailed reports whether the query asks for ?detailed (or
// ?detailed=true).
func detailed(r *http.Request) bool {
	v, ok := r.URL.Query()["detailed"]
	if !ok {
		return false
	}
	if len(v) == 0 || v[0] == "" {
		return true
	}
	b, err := strconv.ParseBool(v[0])
	return err == nil && b
}

// handleUpdateSLO is PUT: a full replace of what the SLO API lets a
// client set. A built-in delivery SLO keeps its SLI and channel. A change
// that would make one of its burn alerts unreachable is refused.
func handleUpdateSLO(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		old, err := pathSLO(d, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		in, err := decode[herald.SLO](r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		o := in
		o.ID, o.Dataset, o.Channel = old.ID, old.Dataset, old.Channel
		if old.BuiltIn() {
			if o.SLI.Alias != "" && o.SLI != old.SLI {
				writeError(w, r, d.Logger, herald.Invalid("sli.alias", "invalid", "a built-in delivery SLO keeps its SLI %q", old.SLI.Alias))
				return
			}
			o.SLI = old.SLI
		}
		if o, err = o.Normalize(); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		alerts, err := d.SLOs.ListBurnAlerts(ctx, o.Dataset, o.ID)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if err := slo.Check(o, alerts); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		var warnings []string
		if !o.BuiltIn() {
			if warnings, err = checkSLI(ctx, d, o, alerts, d.Clock.Now()); err != nil {
				writeError(w, r, d.Logger, err)
				return
			}
		}
		if o, _, err = d.SLOs.SaveSLO(ctx, o, nil); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, sloView{SLO: o, Warnings: warnings})
	})
}

func handleDeleteSLO(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := pathSLO(d, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if o.BuiltIn() {
			writeError(w, r, d.Logger, herald.Errorf(herald.ECONFLICT, "built-in delivery SLOs cannot be deleted; change their target, or their burn alerts, instead"))
			return
		}
		if err := d.SLOs.DeleteSLO(r.Context(), o.Dataset, o.ID); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleSLOHistory is GET /1/slos/{dataset}/{id}/history (herald's): the
// state changes of the SLO's burn alerts, newest first (limit, default
// 100, at most 1000).
func handleSLOHistory(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := pathSLO(d, r)
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
		evs, err := d.SLOs.BurnAlertEvents(r.Context(), o.ID, limit)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, evs)
	})
}

func handleListBurnAlerts(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := sloDataset(r.Context(), d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if key == herald.AllDatasets {
			key = ""
		}
		list, err := d.SLOs.ListBurnAlerts(r.Context(), key, r.URL.Query().Get("slo_id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, list)
	})
}

// burnAlertFrom reads a burn alert from the body for the SLO it names in
// dataset key, normalized and checked as the engine will run it.
func burnAlertFrom(d Deps, r *http.Request, key string) (herald.BurnAlert, error) {
	a, err := decode[herald.BurnAlert](r)
	if err != nil {
		return a, err
	}
	if a.SLO.ID == "" {
		return a, herald.Invalid("slo.id", "missing", "a burn alert needs the id of its SLO")
	}
	o, err := d.SLOs.GetSLO(r.Context(), key, a.SLO.ID)
	if err != nil {
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			return a, herald.Invalid("slo.id", "invalid", "no SLO %q in dataset %q", a.SLO.ID, key)
		}
		return a, err
	}
	a.Dataset, a.State = key, ""
	if a, err = a.Normalize(o.Period(), true); err != nil {
		return a, err
	}
	return a, d.SLOEngine.CheckAlert(r.Context(), o, a)
}

func handleCreateBurnAlert(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := sloDataset(r.Context(), d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		a, err := burnAlertFrom(d, r, key)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		a.ID = ""
		if a, err = d.SLOs.SaveBurnAlert(r.Context(), a); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.Header().Set("Location", "/1/burn_alerts/"+key+"/"+a.ID)
		encode(w, http.StatusCreated, a)
	})
}

// pathBurnAlert returns the burn alert a path's {dataset} and {id} name.
func pathBurnAlert(d Deps, r *http.Request) (herald.BurnAlert, error) {
	key, err := sloDataset(r.Context(), d, r.PathValue("dataset"))
	if err != nil {
		return herald.BurnAlert{}, err
	}
	return d.SLOs.GetBurnAlert(r.Context(), key, r.PathValue("id"))
}

func handleGetBurnAlert(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := pathBurnAlert(d, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, a)
	})
}

func handleUpdateBurnAlert(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		old, err := pathBurnAlert(d, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		a, err := burnAlertFrom(d, r, old.Dataset)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if a.SLO.ID != old.SLO.ID {
			writeError(w, r, d.Logger, herald.Invalid("slo.id", "invalid", "a burn alert cannot move to another SLO"))
			return
		}
		a.ID = old.ID
		if a, err = d.SLOs.SaveBurnAlert(r.Context(), a); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, a)
	})
}

func handleDeleteBurnAlert(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := pathBurnAlert(d, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if err := d.SLOs.DeleteBurnAlert(r.Context(), a.Dataset, a.ID); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
