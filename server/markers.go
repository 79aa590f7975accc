package server

import (
	"context"
	"net/http"

	"herald"
)

// Markers keeps markers; *sqlstore.DB implements it.
type Markers interface {
	SaveMarker(ctx context.Context, dataset string, m herald.Marker) (herald.Marker, error)
	GetMarker(ctx context.Context, dataset, id string) (herald.Marker, error)
	ListMarkers(ctx context.Context, dataset string) ([]herald.Marker, error)
	DeleteMarker(ctx context.Context, dataset, id string) error
}

// handleMarkers serves /1/markers/{dataset}[/{id}] for each method.
func handleMarkers(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := datasetKey(r.Context(), d, r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		id := r.PathValue("id")
		switch r.Method {
		case http.MethodGet:
			list, err := d.Markers.ListMarkers(r.Context(), key)
			if err != nil {
				writeError(w, r, d.Logger, err)
				return
			}
			encode(w, http.StatusOK, list)
		case http.MethodPost, http.MethodPut:
			m, err := decode[herald.Marker](r)
			if err != nil {
				writeError(w, r, d.Logger, err)
				return
			}
			m.ID = id
			status := http.StatusOK
			if r.Method == http.MethodPost {
				m.ID, status = "", http.StatusCreated
			}
			m, err = d.Markers.SaveMarker(r.Context(), key, m)
			if err != nil {
				writeError(w, r, d.Logger, err)
				return
			}
			encode(w, status, m)
		case http.MethodDelete:
			if err := d.Markers.DeleteMarker(r.Context(), key, id); err != nil {
				writeError(w, r, d.Logger, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	})
}
