package api

// uiRoutes are the routes the web UI needs beyond replication-manager's (docs/ui.md):
// the live stream, the short history, plan timelines, the routing view and the settings
// view. They are ours: replication-manager has no such routes.
func (s *Server) uiRoutes() []route {
	return []route{
		{pattern: clusterPrefix + "/stream", protected: true, handler: s.handleStream},
		{pattern: clusterPrefix + "/history", protected: true, handler: s.handleHistory},
		{pattern: clusterPrefix + "/plans", protected: true, handler: s.handlePlans},
		{pattern: clusterPrefix + "/routing", protected: true, handler: s.handleRouting},
		{pattern: clusterPrefix + "/settings/keys", protected: true, grant: GrantClusterSettings, handler: s.handleSettingsView},
	}
}
