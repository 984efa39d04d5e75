/*
 * notify: tells a service manager (systemd's Type=notify) where the process
 * is in its life: ready, reloading, stopping, and a one-line status. Every
 * call is one datagram to the socket named by $NOTIFY_SOCKET; without that
 * variable every call does nothing, so the supervisor calls these
 * unconditionally. Supervisor thread only. A failure to send is logged and
 * otherwise ignored: the service manager's view is advisory, serving is not.
 */
#ifndef CMX_NOTIFY_H
#define CMX_NOTIFY_H

/*
 * READY=1 with STATUS= set from fmt (printf-style). Call once every listener
 * accepts (start-up), and again once a reload's outcome is known, accepted
 * or rejected, to end the RELOADING=1 state.
 */
void notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC now, in microseconds),
   which systemd 253 and later require to match a reload to its READY=1. */
void notify_reloading(void);

/* STOPPING=1: a graceful stop has begun. */
void notify_stopping(void);

/* STATUS= alone, from fmt (printf-style); shown by `systemctl status`. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
