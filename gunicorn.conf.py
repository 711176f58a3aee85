"""gunicorn settings for the web process (read from the project folder automatically).

Threaded workers (gthread): a client that opens a connection and sends its body slowly
holds one thread, not a whole worker, so real texts from Twilio keep being answered.
"""

import os

# Loopback unless BIND_ADDRESS says otherwise (the Procfile passes the same as --bind).
bind = f"{os.environ.get('BIND_ADDRESS', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
# A request (slow body included) that takes longer than this gets its worker restarted;
# Twilio itself gives up after 15 s.
timeout = 30
graceful_timeout = 20
keepalive = 5
# Twilio's requests are small; refuse absurd request lines and headers before the app runs.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"
access_log_format = "%(m)s %(U)s %(s)s %(L)ss"
