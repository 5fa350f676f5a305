package config

import "path/filepath"

// Implied is the File of the origin of a value the configuration implies from other keys
// (derive), for Cluster.Origin and `config check`.
const Implied = "implied"

// derive applies the rules by which replication-manager computes some values from others,
// after every layer is merged:
//
//   - monitoring-basedir other than "system" moves the working directory to
//     <monitoring-basedir>/data, whatever monitoring-datadir says: replication-manager wrote
//     every cluster's files there (SlapOS passes both on its command line), so the cookies,
//     saved settings, events and keys are found where it put them.
//   - prov-orchestrator = "slapos" without slapos-legacy-anonymous-routes written anywhere
//     serves the partition routes as replication-manager did (the configuration SlapOS's
//     own templates write does not know the key; `slapos render` always writes it).
func derive(s *Settings, origins map[string]origin) {
	if s.MonitoringBasedir != "" && s.MonitoringBasedir != "system" {
		s.MonitoringDatadir = filepath.Join(s.MonitoringBasedir, "data")
		if origins != nil {
			origins["monitoring-datadir"] = origin{file: Implied, key: "monitoring-basedir"}
		}
	}
	if origins != nil && s.ProvOrchestrator == "slapos" {
		if _, set := origins["slapos-legacy-anonymous-routes"]; !set {
			s.SlapOSLegacyAnonymousRoutes = true
			origins["slapos-legacy-anonymous-routes"] = origin{file: Implied, key: "prov-orchestrator"}
		}
	}
}

// LegacyRoutesImplied reports whether slapos-legacy-anonymous-routes is on only because
// the configuration does not say (see derive): the daemon warns about it at start.
func (c *Cluster) LegacyRoutesImplied() bool {
	o, ok := c.origins["slapos-legacy-anonymous-routes"]
	return ok && o.file == Implied
}
