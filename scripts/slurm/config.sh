# Shared by up.sh (sourced, not run): the cluster's configuration files as text, from common.sh's settings.
# Only decides; up.sh writes them.

# Fake GPUs: character devices with /dev/null's numbers (up.sh makes them), so that Slurm counts them, binds
# them to steps and sets CUDA_VISIBLE_DEVICES as it would for real ones. task/none: nothing is fenced off.
gres_conf_text() {
  [ "$SLURM_NODE_GPUS" -gt 0 ] || return 0
  echo "AutoDetect=off"
  echo "NodeName=n[1-$SLURM_NODE_COUNT] Name=gpu File=$SLURM_STATE_DIR/dev/gpu[0-$((SLURM_NODE_GPUS - 1))]"
}

slurm_conf_text() {
  local gres_types="" node_gres=""
  if [ "$SLURM_NODE_GPUS" -gt 0 ]; then gres_types="GresTypes=gpu" node_gres=" Gres=gpu:$SLURM_NODE_GPUS"; fi
  cat <<CONF
# Written by scripts/slurm/up.sh (config.sh): troupe's test cluster. Do not edit: up.sh refuses a cluster whose
# configuration is not the one its settings make.
ClusterName=$SLURM_PREFIX
SlurmctldHost=${SLURM_PREFIX}ctl($SLURM_NET.1)
SlurmctldPort=$SLURM_CTLD_PORT
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
MpiDefault=none
# No cgroups here (v1 controllers, no systemd): processes are tracked by parentage, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
SlurmdParameters=config_overrides
ReturnToService=2
# No slurmdbd: no sacct. A finished job stays in slurmctld for MinJobAge seconds (scontrol show job), and
# every finished job is one line of the jobcomp file (state, exit code).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$SLURM_STATE_DIR/ctld/jobcomp.log
MinJobAge=600
# Short timeouts: a test kills a slurmd and waits for its node to go DOWN; scancel's SIGKILL follows SIGTERM.
SlurmdTimeout=10
SlurmctldTimeout=10
KillWait=5
InactiveLimit=0
# Heterogeneous jobs are placed by the backfill scheduler only: try at submission, and every second after.
SchedulerParameters=bf_interval=1,bf_hetjob_immediate
StateSaveLocation=$SLURM_STATE_DIR/ctld/state
SlurmctldPidFile=$CTLD_PID_FILE
SlurmctldLogFile=$SLURM_STATE_DIR/ctld/slurmctld.log
SlurmdSpoolDir=$SLURM_STATE_DIR/nodes/%n/spool
SlurmdPidFile=$SLURM_STATE_DIR/nodes/%n/slurmd.pid
SlurmdLogFile=$SLURM_STATE_DIR/nodes/%n/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$gres_types
NodeName=n[1-$SLURM_NODE_COUNT] NodeAddr=$SLURM_NET.[11-1$SLURM_NODE_COUNT] CPUs=$SLURM_NODE_CPUS RealMemory=$SLURM_NODE_MEMORY_MB$node_gres State=UNKNOWN
# Preemption (troupe's FAILED_PREEMPTED): a job of \`urgent\` takes the nodes of jobs of \`main\`, which are
# cancelled (their state PREEMPTED) after GraceTime seconds of SIGTERM.
PreemptType=preempt/partition_prio
PreemptMode=CANCEL
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=2
PartitionName=urgent Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=2
CONF
}
