package server

import "net/http"

// addRoutes is herald's whole HTTP surface.
func addRoutes(mux *http.ServeMux, d Deps) {
	config := func(h http.Handler) http.Handler { return authenticate(d, h) }

	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(d))
	mux.Handle("GET /metrics", d.Metrics)

	mux.Handle("GET /1/auth", authenticateAny(d, handleAuth()))
	mux.Handle("POST /1/events/{dataset}", authenticateAny(d, handleEvent(d)))
	mux.Handle("POST /1/batch/{dataset}", authenticateAny(d, handleBatch(d)))
	mux.Handle("POST /v1/traces", handleOTLP(d, false))
	mux.Handle("POST /v1/traces/", handleOTLP(d, false))
	mux.Handle("POST /v1/logs", handleOTLP(d, true))
	mux.Handle("POST /v1/logs/", handleOTLP(d, true))

	mux.Handle("GET /1/datasets", config(handleListDatasets(d)))
	mux.Handle("POST /1/datasets", config(handleCreateDataset(d)))
	mux.Handle("GET /1/datasets/{dataset}", config(handleGetDataset(d)))
	mux.Handle("GET /1/columns/{dataset}", config(handleListColumns(d)))
	mux.Handle("GET /1/derived_columns/{dataset}", config(handleListDerivedColumns(d)))
	mux.Handle("POST /1/derived_columns/{dataset}", config(handleCreateDerivedColumn(d)))
	mux.Handle("GET /1/derived_columns/{dataset}/{id}", config(handleGetDerivedColumn(d)))
	mux.Handle("PUT /1/derived_columns/{dataset}/{id}", config(handleUpdateDerivedColumn(d)))
	mux.Handle("DELETE /1/derived_columns/{dataset}/{id}", config(handleDeleteDerivedColumn(d)))
	mux.Handle("POST /1/queries/{dataset}", config(handleCreateQuery(d)))
	mux.Handle("GET /1/queries/{dataset}/{id}", config(handleGetQuery(d)))
	mux.Handle("POST /1/query_results/{dataset}", config(handleCreateQueryResult(d)))
	mux.Handle("GET /1/query_results/{dataset}/{id}", config(handleGetQueryResult(d)))

	mux.Handle("GET /1/recipients", config(handleListRecipients(d)))
	mux.Handle("POST /1/recipients", config(handleCreateRecipient(d)))
	mux.Handle("GET /1/recipients/{id}", config(handleGetRecipient(d)))
	mux.Handle("PUT /1/recipients/{id}", config(handleUpdateRecipient(d)))
	mux.Handle("DELETE /1/recipients/{id}", config(handleDeleteRecipient(d)))
	mux.Handle("GET /1/recipients/{id}/triggers", config(handleRecipientTriggers(d)))
	mux.Handle("GET /1/triggers/{dataset}", config(handleListTriggers(d)))
	mux.Handle("POST /1/triggers/{dataset}", config(handleCreateTrigger(d)))
	mux.Handle("GET /1/triggers/{dataset}/{id}", config(handleGetTrigger(d)))
	mux.Handle("PUT /1/triggers/{dataset}/{id}", config(handleUpdateTrigger(d)))
	mux.Handle("DELETE /1/triggers/{dataset}/{id}", config(handleDeleteTrigger(d)))
	mux.Handle("GET /1/triggers/{dataset}/{id}/evaluations", config(handleTriggerEvaluations(d)))
	mux.Handle("POST /1/triggers/{dataset}/{id}/test", config(handleTestTrigger(d)))

	mux.Handle("POST /1/notifications", config(handleCreateNotification(d)))
	mux.Handle("GET /1/notifications/{id}", config(handleGetNotification(d)))
	mux.Handle("GET /1/deliveries", config(handleListDeliveries(d)))
	mux.Handle("GET /1/deliveries/{id}", config(handleGetDelivery(d)))
	mux.Handle("POST /1/deliveries/{id}/retry", config(handleRetryDelivery(d)))

	mux.Handle("GET /1/markers/{dataset}", config(handleMarkers(d)))
	mux.Handle("POST /1/markers/{dataset}", config(handleMarkers(d)))
	mux.Handle("PUT /1/markers/{dataset}/{id}", config(handleMarkers(d)))
	mux.Handle("DELETE /1/markers/{dataset}/{id}", config(handleMarkers(d)))

	mux.Handle("GET /1/slos/{dataset}", config(handleListSLOs(d)))
	mux.Handle("POST /1/slos/{dataset}", config(handleCreateSLO(d)))
	mux.Handle("GET /1/slos/{dataset}/{id}", config(handleGetSLO(d)))
	mux.Handle("PUT /1/slos/{dataset}/{id}", config(handleUpdateSLO(d)))
	mux.Handle("DELETE /1/slos/{dataset}/{id}", config(handleDeleteSLO(d)))
	mux.Handle("GET /1/slos/{dataset}/{id}/history", config(handleSLOHistory(d)))
	mux.Handle("GET /1/burn_alerts/{dataset}", config(handleListBurnAlerts(d)))
	mux.Handle("POST /1/burn_alerts/{dataset}", config(handleCreateBurnAlert(d)))
	mux.Handle("GET /1/burn_alerts/{dataset}/{id}", config(handleGetBurnAlert(d)))
	mux.Handle("PUT /1/burn_alerts/{dataset}/{id}", config(handleUpdateBurnAlert(d)))
	mux.Handle("DELETE /1/burn_alerts/{dataset}/{id}", config(handleDeleteBurnAlert(d)))

	mux.Handle("GET /1/canaries", config(handleCanaries(d)))

	// Partners authenticate by their own signatures, not herald keys.
	mux.Handle("POST /hooks/{partner}", handlePartnerHook(d))

	if d.Sessions != nil {
		addUIRoutes(mux, d)
	}

	mux.Handle("/", handleNotFound(d))
}

// addUIRoutes is the web UI's surface (docs/ui.md).
func addUIRoutes(mux *http.ServeMux, d Deps) {
	ui := func(h http.Handler) http.Handler { return signedIn(d, h) }
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusSeeOther))
	mux.Handle("GET /ui/static/", handleStatic())
	mux.Handle("GET /ui/signin", handleSignin(d))
	mux.Handle("POST /ui/signin", handleSignin(d))
	mux.Handle("POST /ui/signout", ui(handleSignout(d)))
	mux.Handle("GET /ui/{$}", ui(handleOverview(d)))
	mux.Handle("GET /ui/sandbox", ui(handleMailbox(d)))

	mux.Handle("GET /ui/deliveries", ui(handleDeliveriesPage(d)))
	mux.Handle("GET /ui/deliveries/{id}", ui(handleDeliveryPage(d)))
	mux.Handle("POST /ui/deliveries/{id}/retry", ui(handleDeliveryRetryForm(d)))
	mux.Handle("POST /ui/notifications", ui(handleNotificationForm(d)))

	mux.Handle("GET /ui/triggers", ui(handleUITriggers(d)))
	mux.Handle("GET /ui/triggers/{dataset}/{id}", ui(handleUITrigger(d)))
	mux.Handle("POST /ui/triggers/{dataset}/{id}/test", ui(handleUITestTrigger(d)))
	mux.Handle("GET /ui/slos", ui(handleUISLOs(d)))
	mux.Handle("GET /ui/slos/{dataset}/{id}", ui(handleUISLO(d)))
}
