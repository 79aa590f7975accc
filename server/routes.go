package server

import "net/http"

// addRoutes is herald's whole HTTP surface.
func addRoutes(mux *http.ServeMux, d Deps) {
	config := func(h http.Handler) http.Handler { return authenticate(d, h) }

	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(d))
	mux.Handle("GET /metrics", d.Metrics)

	mux.Handle("GET /1/auth", authenticateAny(d, handleAuth()))
	mux.Handle("POST /1/notifications", config(handleCreateNotification(d)))
	mux.Handle("GET /1/notifications/{id}", config(handleGetNotification(d)))
	mux.Handle("GET /1/deliveries", config(handleListDeliveries(d)))
	mux.Handle("GET /1/deliveries/{id}", config(handleGetDelivery(d)))
	mux.Handle("POST /1/deliveries/{id}/retry", config(handleRetryDelivery(d)))

	mux.Handle("/", handleNotFound(d))
}
