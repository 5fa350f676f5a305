package api

import (
	"net/http"
	"sort"
	"strings"

	"replication-manager-pro/config"
)

// The settings view: GET /api/clusters/{c}/settings/keys lists every configuration key of
// a cluster with its running value, its default, where the value comes from, and whether
// an operator may change it through settings/actions/set and switch (the UI's settings
// page). Secret values are never in it, only whether they are set.

// SettingsView is the answer of the settings view route.
type SettingsView struct {
	Cluster    string `json:"cluster"`
	SaveConfig bool   `json:"saveConfig"` // monitoring-save-config: API changes are saved
	SavedFile  string `json:"savedFile"`  // where they are saved
	// FilesError says why the configuration files could not be read again to tell the
	// sources (the sources are then those of the running configuration).
	FilesError string        `json:"filesError,omitempty"`
	Keys       []SettingView `json:"keys"`
}

// SettingView is one key.
type SettingView struct {
	Key     string `json:"key"`
	Kind    string `json:"kind"` // bool, int, float, string
	Value   string `json:"value"`
	Default string `json:"default"`
	Help    string `json:"help"`
	Range   string `json:"range,omitempty"`
	Secret  bool   `json:"secret"`
	// Source: default, file, saved, flag, environment, implied, or api (changed through
	// the API and not what the files and saved settings give: lost at a restart).
	Source  string `json:"source"`
	File    string `json:"file,omitempty"`
	Section string `json:"section,omitempty"`
	// Restart is the value a restart would give, when it differs from the running one.
	Restart  string `json:"restart,omitempty"`
	Editable bool   `json:"editable"`
	NoEffect bool   `json:"noEffect"` // accepted for compatibility, no effect yet
}

// editableFamilies are the key families an operator may change through the API from the
// UI: the behaviour of monitoring, failover, switchover, rejoin, proxies, provisioning,
// backups and the scheduler, as replication-manager's settings switches and setters
// allow. Listeners, the API's users, data directories, etcd and the include directory
// are the daemon's, set in the files. Secrets are never taken from a URL.
var editableFamilies = []string{"failover-", "switchover-", "autorejoin", "autoseed", "check-", "force-", "scheduler-",
	"backup-", "proxysql", "haproxy", "proxy-", "maxscale", "prov-", "replication-", "sysbench-", "alert-", "mail-",
	"monitoring-", "log-", "db-servers-", "test-inject-traffic", "topology-", "binlog-", "compress-"}

var notEditable = map[string]bool{
	"include": true, "db-servers-hosts": true, "monitoring-datadir": true, "monitoring-basedir": true,
	"monitoring-sharedir": true, "monitoring-max-clusters": true, "log-file": true, "log-rotate-max-size": true,
	"log-rotate-max-backup": true,
}

// notEditableSuffixes name programs and files the manager runs or reads (scripts,
// binaries, key files): changing them from a browser would run what the browser says.
var notEditableSuffixes = []string{"-script", "-path", "-basedir"}

// Editable tells whether an operator may change key through settings/actions/set or
// switch from the UI (see editableFamilies).
func Editable(key string) bool {
	if config.IsSecret(key) || notEditable[key] || config.StatusOf(key) != config.StatusImplemented {
		return false
	}
	for _, s := range notEditableSuffixes {
		if strings.HasSuffix(key, s) {
			return false
		}
	}
	for _, f := range editableFamilies {
		if strings.HasPrefix(key, f) {
			return true
		}
	}
	return false
}

func (s *Server) handleSettingsView(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	m := rc.member
	running := &m.Config
	st := &running.Settings
	out := SettingsView{Cluster: m.Name, SaveConfig: st.MonitoringSaveConfig, SavedFile: config.SavedPath(st, m.Name)}
	// The sources as the files and saved settings give them now: a value changed through
	// the API without being saved differs from it.
	files := running
	if s.opt.LoadConfig != nil {
		if cfg, err := s.opt.LoadConfig(); err != nil {
			out.FilesError = err.Error()
		} else if c, ok := cfg.Cluster(m.Name); ok {
			files = c
		}
	}
	for _, k := range config.Keys() {
		v := SettingView{Key: k.Name, Kind: k.Kind.String(), Default: k.Default, Help: k.Help, Range: k.Range(), Secret: k.Secret,
			Editable: Editable(k.Name), NoEffect: config.StatusOf(k.Name) == config.StatusNoEffect}
		text, _ := st.Text(k.Name)
		fileText, _ := files.Settings.Text(k.Name)
		v.Value = text
		if k.Secret {
			v.Value, v.Default = config.Mask(k.Name, text), config.Mask(k.Name, k.Default)
		}
		v.Source = "default"
		if file, section, ok := files.Origin(k.Name); ok {
			v.File, v.Section = file, section
			switch {
			case file == config.CommandLine:
				v.Source, v.File = "flag", ""
			case file == config.Environment:
				v.Source, v.File = "environment", ""
			case file == config.Implied:
				v.Source, v.File = "implied", ""
			case strings.HasPrefix(strings.ToLower(section), "saved-"):
				v.Source = "saved"
			default:
				v.Source = "file"
			}
		}
		if text != fileText {
			v.Source = "api"
			if !k.Secret {
				v.Restart = fileText
			}
		}
		out.Keys = append(out.Keys, v)
	}
	sort.Slice(out.Keys, func(i, j int) bool { return out.Keys[i].Key < out.Keys[j].Key })
	writeJSON(w, http.StatusOK, out)
}
