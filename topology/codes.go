package topology

// Problem codes found by the analysis. Each names one situation; alerts, metrics, the
// recovery table, the routers and tests match on them. They live here, below every package
// that reads them, so that the API and routers need not import the decision code.
const (
	DeadMaster                           Code = "DeadMaster"
	SuspectMaster                        Code = "SuspectMaster"
	UnreachableMasterWithHealthyReplicas Code = "UnreachableMasterWithHealthyReplicas"
	NoMaster                             Code = "NoMaster"
	SplitBrain                           Code = "SplitBrain"
	WritableStandalone                   Code = "WritableStandalone"
	MultiMaster                          Code = "MultiMaster"
	ReplicationCycle                     Code = "ReplicationCycle"
	NoReplica                            Code = "NoReplica"
	BrokenReplication                    Code = "BrokenReplication"
	LaggingReplica                       Code = "LaggingReplica"
	WritableReplica                      Code = "WritableReplica"
	ReadOnlyMaster                       Code = "ReadOnlyMaster"
	ErrantGTID                           Code = "ErrantGTID"
	ReplicaDown                          Code = "ReplicaDown"
	AuthFailure                          Code = "AuthFailure"
	ClusterDown                          Code = "ClusterDown"
	ReplicaWithoutBinlog                 Code = "ReplicaWithoutBinlog"
	ReplicaOfUnknownSource               Code = "ReplicaOfUnknownSource"
	ReplicaNotFollowingMaster            Code = "ReplicaNotFollowingMaster"
	FormerMasterCanRejoin                Code = "FormerMasterCanRejoin"
	FormerMasterDiverged                 Code = "FormerMasterDiverged"
	DeadRelay                            Code = "DeadRelay"     // a relay (intermediate master) down, confirmed by its replicas
	SlowHeartbeat                        Code = "SlowHeartbeat" // a replica expects its source's heartbeat less often than fast detection needs
)

// Codes lists every problem code, for tables that must cover them all.
var Codes = []Code{
	DeadMaster, SuspectMaster, UnreachableMasterWithHealthyReplicas, NoMaster, SplitBrain,
	WritableStandalone, MultiMaster, ReplicationCycle, NoReplica, BrokenReplication,
	LaggingReplica, WritableReplica, ReadOnlyMaster, ErrantGTID, ReplicaDown, AuthFailure,
	ClusterDown, ReplicaWithoutBinlog, ReplicaOfUnknownSource, ReplicaNotFollowingMaster,
	FormerMasterCanRejoin, FormerMasterDiverged, DeadRelay, SlowHeartbeat,
}
