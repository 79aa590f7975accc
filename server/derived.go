package server

import (
	"context"
	"net/http"
	"strings"

	"herald"
)

// Derived columns, in the shape of Honeycomb's /1/derived_columns API
// (reference: honeycomb-api.md §6). They belong to one dataset: __all__
// answers 422, as the event store refuses it.

// handleListDerivedColumns is GET /1/derived_columns/{dataset}: every
// derived column of the dataset, or with ?alias= the one with that alias
// (404 if none).
func handleListDerivedColumns(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dataset := r.PathValue("dataset")
		list, err := d.Events.DerivedColumns(r.Context(), dataset)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if !r.URL.Query().Has("alias") {
			encode(w, http.StatusOK, list)
			return
		}
		alias := r.URL.Query().Get("alias")
		for _, dc := range list {
			if dc.Alias == alias {
				encode(w, http.StatusOK, dc)
				return
			}
		}
		writeError(w, r, d.Logger, herald.Errorf(herald.ENOTFOUND, "dataset %q has no derived column with alias %q", dataset, alias))
	})
}

// handleCreateDerivedColumn is POST /1/derived_columns/{dataset} → 201.
func handleCreateDerivedColumn(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := decode[herald.DerivedColumn](r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		dataset := r.PathValue("dataset")
		out, err := d.Events.CreateDerivedColumn(r.Context(), dataset, herald.DerivedColumn{
			Alias: in.Alias, Expression: in.Expression, Description: in.Description,
		})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.Header().Set("Location", "/1/derived_columns/"+herald.DatasetSlug(dataset)+"/"+out.ID)
		encode(w, http.StatusCreated, out)
	})
}

func handleGetDerivedColumn(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := d.Events.DerivedColumn(r.Context(), r.PathValue("dataset"), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, out)
	})
}

// handleUpdateDerivedColumn is PUT: the expression and description are
// replaced; the alias may be sent but not changed. The SLI of an SLO must
// stay boolean: a change that would break it is undone and refused.
func handleUpdateDerivedColumn(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		in, err := decode[herald.DerivedColumn](r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		dataset := r.PathValue("dataset")
		old, err := d.Events.DerivedColumn(ctx, dataset, r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		out, err := d.Events.UpdateDerivedColumn(ctx, dataset, herald.DerivedColumn{
			ID: old.ID, Alias: in.Alias, Expression: in.Expression, Description: in.Description,
		})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		using, err := slosUsing(ctx, d, dataset, old.Alias)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if len(using) > 0 {
			now := d.Clock.Now()
			if _, err := d.Events.SLICounts(ctx, dataset, old.Alias, now, now); herald.ErrorCode(err) == herald.EINVALID {
				if _, rerr := d.Events.UpdateDerivedColumn(ctx, dataset, old); rerr != nil {
					writeError(w, r, d.Logger, rerr)
					return
				}
				writeError(w, r, d.Logger, herald.Invalid("expression", "invalid",
					"derived column %q is the SLI of SLO(s) %s and must stay true, false or null: %v", old.Alias, strings.Join(using, ", "), err))
				return
			}
		}
		encode(w, http.StatusOK, out)
	})
}

// slosUsing returns the ids of the SLOs of dataset whose SLI is alias.
func slosUsing(ctx context.Context, d Deps, dataset, alias string) ([]string, error) {
	ds, err := d.Events.Dataset(ctx, dataset)
	if err != nil {
		return nil, err
	}
	slos, err := d.SLOs.ListSLOs(ctx, ds.Slug)
	if err != nil {
		return nil, err
	}
	var using []string
	for _, o := range slos {
		if o.SLI.Alias == alias {
			using = append(using, o.ID)
		}
	}
	return using, nil
}

// handleDeleteDerivedColumn deletes a derived column no SLO uses as its
// SLI (409 otherwise, naming the SLOs).
func handleDeleteDerivedColumn(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		dc, err := d.Events.DerivedColumn(ctx, r.PathValue("dataset"), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		using, err := slosUsing(ctx, d, r.PathValue("dataset"), dc.Alias)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if len(using) > 0 {
			writeError(w, r, d.Logger, herald.Errorf(herald.ECONFLICT, "derived column %q is the SLI of SLO(s) %s; delete them first", dc.Alias, strings.Join(using, ", ")))
			return
		}
		if err := d.Events.DeleteDerivedColumn(r.Context(), r.PathValue("dataset"), r.PathValue("id")); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
