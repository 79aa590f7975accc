package server

import (
	"context"
	"net/http"
	"time"

	"herald"
)

// queryTimeout bounds one query run.
const queryTimeout = 30 * time.Second

// datasetKey returns the slug a path's dataset is stored under, after
// checking that it exists; __all__ always does.
func datasetKey(ctx context.Context, d Deps, name string) (string, error) {
	if name == herald.AllDatasets {
		return name, nil
	}
	ds, err := d.Events.Dataset(ctx, name)
	if err != nil {
		return "", err
	}
	return ds.Slug, nil
}

// handleCreateQuery is POST /1/queries/{dataset}: checks and saves a
// query specification; it does not run it.
func handleCreateQuery(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := decode[herald.Query](r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		q.ID = ""
		if q.Limit > herald.MaxLimit {
			writeError(w, r, d.Logger, herald.Invalid("limit", "invalid", "must be between 1 and %d", herald.MaxLimit))
			return
		}
		if _, err := q.Normalize(); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		key, err := datasetKey(r.Context(), d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		q, err = d.Queries.CreateQuery(r.Context(), key, q)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, q)
	})
}

func handleGetQuery(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := datasetKey(r.Context(), d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		q, err := d.Queries.GetQuery(r.Context(), key, r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, q)
	})
}

// queryResultRequest is POST /1/query_results/{dataset}.
type queryResultRequest struct {
	QueryID       string `json:"query_id"`
	DisableSeries bool   `json:"disable_series"`
	Limit         int    `json:"limit"`
	// Honeycomb's flags for totals; herald accepts them and computes no
	// totals.
	DisableTotalByAggregate *bool `json:"disable_total_by_aggregate"`
	DisableOtherByAggregate *bool `json:"disable_other_by_aggregate"`
}

// queryResultResponse is a query result in Honeycomb's shape.
type queryResultResponse struct {
	ID       string            `json:"id"`
	Complete bool              `json:"complete"`
	Query    herald.Query      `json:"query"`
	Data     *herald.QueryData `json:"data,omitempty"`
	Links    map[string]string `json:"links"`
}

func resultResponse(dataset string, q herald.Query, res *herald.QueryResult) queryResultResponse {
	path := "/1/query_results/" + dataset + "/" + res.ID
	return queryResultResponse{ID: res.ID, Complete: true, Query: q, Data: &res.Data,
		Links: map[string]string{"query_url": path, "graph_image_url": ""}}
}

// handleCreateQueryResult is POST /1/query_results/{dataset}: runs a saved
// query now and keeps its answer. The run finishes before the answer, so
// the result is complete at once; clients that poll see that on their
// first poll.
func handleCreateQueryResult(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[queryResultRequest](r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		name := r.PathValue("dataset")
		key, err := datasetKey(r.Context(), d, name)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if req.QueryID == "" {
			writeError(w, r, d.Logger, herald.Invalid("query_id", "missing", "name the query to run"))
			return
		}
		q, err := d.Queries.GetQuery(r.Context(), key, req.QueryID)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		run := q
		limit := herald.MaxLimit
		if req.DisableSeries {
			limit = herald.MaxResultLimit
		}
		if req.Limit < 0 || req.Limit > limit {
			writeError(w, r, d.Logger, herald.Invalid("limit", "invalid", "must be between 1 and %d", limit))
			return
		}
		if req.Limit > 0 {
			run.Limit = req.Limit
		}
		ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
		defer cancel()
		data, err := d.Events.Run(ctx, name, run, herald.RunOptions{Now: d.Clock.Now(), Series: !req.DisableSeries})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		res := &herald.QueryResult{QueryID: q.ID, Dataset: key, Data: *data}
		if err := d.Queries.CreateQueryResult(r.Context(), res); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.Header().Set("Location", "/1/query_results/"+key+"/"+res.ID)
		encode(w, http.StatusCreated, resultResponse(key, q, res))
	})
}

func handleGetQueryResult(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := datasetKey(r.Context(), d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		res, err := d.Queries.GetQueryResult(r.Context(), key, r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		q, err := d.Queries.GetQuery(r.Context(), key, res.QueryID)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, resultResponse(key, q, res))
	})
}
