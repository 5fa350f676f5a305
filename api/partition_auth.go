package api

import (
	"net/http"
	"strings"

	"replication-manager-pro/config"
)

// GrantProvConfig lets a user download configuration bundles of a cluster's nodes with
// its API token (the SlapOS orchestrator's config route; partitions use their own
// credential). Bundles hold the database admin credential: by default only a user with
// the "prov" ACL word (admin) holds it.
const GrantProvConfig = "prov-config"

// AuthorizedFor reports whether the request carries a valid token of a known user holding
// grant under st (a cluster's settings, whose users and ACL apply), without answering it:
// for handlers that decide themselves, e.g. a bundle download.
func (s *Server) AuthorizedFor(r *http.Request, st *config.Settings, grant string) bool {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" || st == nil {
		return false
	}
	user, err := s.auth.verify(tok)
	return err == nil && s.knownUser(user) && hasGrant(st, user, grant)
}
