"""What the console says, in the user's language and time zone, from keys and values.

The API keeps its English strings and JSON; the console words the same facts itself from the
catalogs (``i18n/*.json``): next steps (``tasks/health/advice.py`` steps), health reasons (their
``code``), incident titles, causes and time lines (from the incident's dimension, value, signals
and current counts), history rows, task results, connection requests and errors. Anything that
carries no key falls back to a catalog sentence around the stored text, never raw JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.api import HistoryEntry

# tasks/health/advice.py reboot_reason's sentences -> catalog keys.
BOOT_REASONS = {
    "reboot requested by the ACS": "boot_acs",
    "restart after a firmware or configuration download": "boot_download",
    "first boot or factory reset": "boot_bootstrap",
    "power loss or crash (no reboot was requested)": "boot_power",
}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"  # the one date format, server-rendered and after a live refresh


class Translator:
    def __init__(self, language: str, messages: Mapping[str, str], fallback: Mapping[str, str]) -> None:
        self.language = language
        self.messages = messages
        self.fallback = fallback

    def has(self, key: str) -> bool:
        return key in self.messages or key in self.fallback

    def __call__(self, key: str, **values: Any) -> str:
        text = self.messages.get(key) or self.fallback.get(key) or key
        return text.format(**values) if values else text


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Words:
    def __init__(self, t: Translator, zone: ZoneInfo, now: datetime | None = None) -> None:
        self.t = t
        self.zone = zone
        self.now = now

    # -- time --------------------------------------------------------------------------------------

    def when(self, moment: datetime | None) -> str:
        if moment is None:
            return "—"
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone).strftime(TIME_FORMAT)

    def ago(self, moment: datetime | None) -> str:
        t = self.t
        if moment is None:
            return t("never")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = int(((self.now or datetime.now(UTC)) - moment).total_seconds())
        if seconds < 60:
            return t("ago_seconds", n=max(seconds, 0))
        if seconds < 3600:
            return t("ago_minutes", n=seconds // 60)
        if seconds < 86400:
            return t("ago_hours", n=seconds // 3600)
        return t("ago_days", n=seconds // 86400)

    def when_ago(self, moment: datetime | None) -> str:
        """``2026-12-04 20:04:30 MSK (24 s ago)``: every date shown with its age, the same after a live refresh."""
        return "—" if moment is None else f"{self.when(moment)} ({self.ago(moment)})"

    def duration(self, seconds: int | None) -> str:
        if seconds is None:
            return "—"
        days, rest = divmod(int(seconds), 86400)
        return self.t("duration", d=days, hm=f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}")

    # -- health and advice -------------------------------------------------------------------------

    def boot_reason(self, reason: str) -> str:
        key = BOOT_REASONS.get(reason)
        return self.t(key) if key else self.t("reason_other", message=reason)

    def reason(self, reason: Mapping[str, Any]) -> str:
        code = reason.get("code")
        if code and self.t.has("reason_" + code):
            params = {key: _number(value) for key, value in (reason.get("params") or {}).items()}
            return self.t("reason_" + str(code), **params)
        return self.t("reason_other", message=reason.get("message") or "")

    def step(self, key: str, params: Mapping[str, Any]) -> str:
        t = self.t
        values: dict[str, Any] = {}
        for name, value in params.items():
            if name in ("reason", "failed") and isinstance(value, Mapping):
                values[name] = self.reason(value)
            elif name == "action":
                values[name] = t("action_" + str(value))
            elif name == "said" and isinstance(value, Mapping):
                reasons = "; ".join(self.reason(reason) for reason in value.get("reasons") or [])
                status = t("health_" + str(value.get("status")))
                values[name] = f"{status} ({reasons})" if reasons else status
            elif name == "since" and isinstance(value, datetime):
                values[name] = self.when_ago(value)
            elif name == "incident" and isinstance(value, Mapping):
                values["title"] = self.incident_title(value)
            elif name != "title" or "incident" not in params:
                values[name] = value
        return t("step_" + key, **values)

    # -- incidents ---------------------------------------------------------------------------------

    def incident_title(self, incident: Mapping[str, Any]) -> str:
        """The title with the incident's current numbers: affected now of the group."""
        signals: Mapping[str, int] = incident.get("signals") or {}
        signal = max(signals, key=lambda name: signals[name]) if signals else "offline"
        count_key = "incident_count_" + signal if self.t.has("incident_count_" + signal) else "incident_count_offline"
        count = self.t(count_key, now=incident.get("affected_now", 0), size=incident.get("group_size", 0))
        dimension, value = str(incident.get("dimension") or ""), str(incident.get("value") or "")
        first, _, second = value.partition(" ")
        kind = "outage" if signal == "offline" else "trouble"
        key = f"incident_title_{dimension}"
        if dimension in ("pon", "olt"):
            key += "_" + kind
        if not self.t.has(key):
            return self.t("incident_title_other", group=f"{dimension} {value}", count=count)
        return self.t(key, value=value, first=first, second=second, count=count)

    def incident_cause(self, incident: Mapping[str, Any]) -> str:
        dimension, value = str(incident.get("dimension") or ""), str(incident.get("value") or "")
        first, _, second = value.partition(" ")
        key = f"incident_cause_{dimension}"
        if not self.t.has(key):
            return self.t("incident_cause_other", group=f"{dimension} {value}")
        return self.t(key, value=value, first=first, second=second)

    def timeline(self, entry: Mapping[str, Any]) -> str:
        event = str(entry.get("event") or "")
        if self.t.has("timeline_" + event):
            return self.t("timeline_" + event, n=entry.get("affected", 0))
        return self.t("timeline_other", event=event, n=entry.get("affected", 0))

    # -- tasks, actions and history ----------------------------------------------------------------

    def kind(self, kind: str) -> str:
        return self.t("kind_" + kind) if self.t.has("kind_" + kind) else kind

    def task_result(self, task: Mapping[str, Any]) -> str | None:
        """One sentence about a finished task's result (values and diagnostic results stay a table)."""
        t = self.t
        result: Mapping[str, Any] = task.get("result") or {}
        if task.get("status") == "cancelled":
            return t("result_cancelled")
        if task.get("status") == "expired":
            return t("result_expired")
        if "rebooted_after_seconds" in result:
            return t("result_rebooted", s=_number(round(float(result["rebooted_after_seconds"]), 1)))
        if "bootstrapped" in result:
            return t("result_bootstrapped")
        if task.get("kind") == "reprovision" and "tasks_queued" in result:
            queued = result["tasks_queued"]
            if queued is None:
                return t("result_reprovision_read_first")
            return t("result_reprovision_in_sync") if queued == 0 else t("result_reprovisioned", n=queued)
        if task.get("kind") == "refresh" and "names" in result:
            return t("result_refreshed", names=result["names"], values=result.get("values", 0))
        if "applied_after_reboot" in result:
            return t("result_applied_after_reboot") if result["applied_after_reboot"] else t("result_applied")
        if "confirmed_by" in result:
            return t("result_confirmed")
        if result.get("accepted") and task.get("status") != "done":
            return t("result_accepted")
        if isinstance(result.get("names"), list):
            return t("result_names", n=len(result["names"]))
        return None

    def task_reason(self, task: Mapping[str, Any]) -> str | None:
        reason = task.get("reason")
        if not reason:
            return None
        if str(reason).startswith("cancelled by "):
            return self.t("reason_cancelled_by", who=str(reason)[len("cancelled by "):])
        return self.t("task_reason", reason=reason)

    def wake(self, report: Mapping[str, Any] | None) -> str:
        """A connection request's outcome, without exception names."""
        if not report:
            return ""
        if report.get("answered"):
            return self.t("wake_answered")
        if report.get("via") == "none":
            return self.t("wake_no_url")
        if report.get("via") == "udp":
            return self.t("wake_udp_sent")
        return self.t("wake_no_answer")

    def history(self, entry: HistoryEntry) -> str:
        t, detail = self.t, entry.detail
        match entry.type:
            case "session":
                events = ", ".join(detail.get("events") or []) or t("no_events")
                outcome = detail.get("outcome") or "unknown"
                word = t("outcome_" + outcome) if t.has("outcome_" + outcome) else outcome
                return t("h_session", events=events, outcome=word)
            case "task":
                return t("h_task", kind=self.kind(str(detail.get("kind"))), status=t(str(detail.get("status"))))
            case "operator":
                return self._operator(detail)
            case "event":
                return self._event(detail)
            case "health":
                reasons = "; ".join(self.reason(reason) for reason in detail.get("reasons") or [])
                return t("h_health", status=t("health_" + str(detail.get("status"))),
                         reasons=reasons or t("no_problem"))
            case "incident":
                return t("h_incident", id=entry.id, status=t("incident_" + str(detail.get("status"))),
                         title=self.incident_title(detail))
        return entry.summary

    def _operator(self, detail: Mapping[str, Any]) -> str:
        t = self.t
        status = int(detail.get("status") or 0)
        outcome = t("op_done") if 200 <= status < 300 else t("op_refused", status=status)
        path = str(detail.get("path") or "")
        action = path.rsplit("/", 1)[-1]
        if detail.get("kind"):
            what = t("op_task", kind=self.kind(str(detail["kind"])))
        elif action == "untag" or (detail.get("method") == "DELETE" and detail.get("tags") is not None):
            what = t("op_untag", tags=", ".join(detail.get("tags") or []))
        elif detail.get("tags") is not None and action == "watch":
            what = t("op_watch")
        elif detail.get("tags") is not None:
            what = t("op_tag", tags=", ".join(detail.get("tags") or []))
        elif action == "wake" or "connection_request" in path:
            what = t("op_wake")
        else:
            what = t("op_other", method=detail.get("method") or "", path=path)
        return f"{what} — {outcome}"

    def _event(self, detail: Mapping[str, Any]) -> str:
        t = self.t
        match detail.get("type"):
            case "boot":
                events = list(detail.get("events") or [])
                key = "ev_first_contact" if detail.get("first_contact") else "ev_boot"
                return t(key, events=", ".join(events))
            case "online":
                since = detail.get("offline_since")
                return t("ev_online", since=self.when(since)) if since else t("ev_back_online")
            case "offline":
                return t("ev_offline")
            case "health":
                before = detail.get("from")
                after = t("health_" + str(detail.get("to")))
                if before is None:
                    return t("ev_health_first", to=after)
                return t("ev_health", **{"from": t("health_" + str(before)), "to": after})
            case "task_failed":
                return t("ev_task_failed", kind=self.kind(str(detail.get("kind"))), reason=detail.get("reason") or "")
            case "campaign":
                state = "member_" + str(detail.get("state"))
                return t("ev_campaign", campaign=detail.get("campaign"), step=detail.get("step") or "",
                         state=t(state) if t.has(state) else detail.get("state"))
        return t("ev_other", type=detail.get("type"))

    # -- errors ------------------------------------------------------------------------------------

    def error(self, code: str, params: Mapping[str, Any] | None = None) -> str:
        key = "err_" + code
        if not self.t.has(key):
            return self.t("err_unknown")
        return self.t(key, **{name: _number(value) for name, value in (params or {}).items()})
