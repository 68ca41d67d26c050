"""media-import as an Apache Airflow DAG: one nightly run, then the state's history in the task log.

Copy this file into your DAGs folder and adapt the paths and the schedule below. The worker needs
media-import installed (a virtualenv is best; point MEDIA_IMPORT at its ``bin/media-import``).

The token comes from an Airflow connection, never from this file: create a connection with the id
``hubspot_media_bridge`` (type "HTTP" or "Generic") whose password is the private app token, e.g.

    airflow connections add hubspot_media_bridge --conn-type http --conn-password 'pat-...'

It reaches the command only as the HUBSPOT_ACCESS_TOKEN environment variable: ``env`` is rendered at
run time, so the token is neither in this file nor on the command line (``ps``); Airflow masks
connection passwords in rendered fields and task logs, and media-import never prints or logs it.

Exit codes: 0 ok; 1 some events invalid or failed (the results file lists them); 2 configuration or
input error; 3 stopped early (daily quota reached, or the task was killed): the next run resumes;
4 another run holds the state directory's lock: the task is marked skipped, not failed.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.4+
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.operators.bash import BashOperator  # type: ignore[no-redef]

MEDIA_IMPORT = "/opt/media-import/.venv/bin/media-import"  # adapt: the installed command
STATE_DIR = "/var/lib/media-import/state"  # journal, file manifest, run history, lock: keep it between runs

# Adapt: the inputs (a folder, a glob, or s3://bucket/prefix/), the mapping, where results and logs go.
# Files already imported are skipped unread, grown files send only their new rows, and events earlier
# runs could not send are sent again.
RUN = [
    MEDIA_IMPORT,
    "run",
    "/srv/exports/plays/",
    "--mapping",
    "/etc/media-import/generic.yaml",
    "--results",
    "/var/lib/media-import/results/last-run.csv",
    "--state-dir",
    STATE_DIR,
    "--quiet",
    "--log-file",
    "/var/log/media-import/media-import.log",
    "--log-format",
    "json",
]
STATUS = [MEDIA_IMPORT, "status", "--state-dir", STATE_DIR]

with DAG(
    dag_id="media_import_nightly",
    description="Import the day's media play logs into HubSpot Media Bridge",
    schedule="30 2 * * *",  # adapt: after the exports have landed
    start_date=datetime(2026, 1, 1),
    catchup=False,  # each run imports everything new anyway: no need to replay missed days
    max_active_runs=1,  # one at a time (media-import's lock would refuse a second run anyway)
    tags=["hubspot", "media-import"],
) as dag:
    run = BashOperator(
        task_id="media_import_run",
        bash_command=shlex.join(RUN),
        # Rendered at run time from the connection; append_env keeps PATH, AWS_* and the rest.
        env={"HUBSPOT_ACCESS_TOKEN": "{{ conn.hubspot_media_bridge.password }}"},
        append_env=True,
        skip_on_exit_code=4,  # another run still holds the lock: skip rather than fail
        execution_timeout=timedelta(hours=20),  # SIGTERM then: in-flight events finish, the next run resumes
    )
    status = BashOperator(
        task_id="media_import_status",
        bash_command=shlex.join(STATUS),
        trigger_rule="all_done",  # show the history in the log even when the run failed
    )
    run >> status
