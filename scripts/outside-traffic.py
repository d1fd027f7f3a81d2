#!/usr/bin/env python3
"""Independent, labelled Okta System Log traffic for judging authpulse from outside.

Written without reading authpulse's simulator or detectors (issue 10: "your own simulator
is not the judge"). It models a different organisation, "Acme Group": 1500 people in four
offices on two continents (Berlin, London, Chicago, Seattle), two Okta tenants exported
into one stream (Europe on Identity Engine, the US still on Classic after an
acquisition), hybrid work (office NAT or home address, phones on carrier CGNAT), push /
TOTP / SMS factors, SSO and OAuth refresh-token events beside sign-ins, typos, lockouts,
internet background noise (bots, scanners, ThreatInsight blocks), integration accounts,
weekends, a regional public holiday and both DST changes (EU 25 Oct, US 1 Nov 2026).

Incidents are injected with randomised size and time; labels are JSON lines in the format
`authpulse evaluate --labels` reads (kind, start, end, expect_page, class, note).

Usage:
    scripts/outside-traffic.py --seed 1 --out t.ndjson.gz --labels t.labels.jsonl [--summary]
Python 3.11, standard library only; the same arguments always give the same bytes.
"""

import argparse
import gzip
import json
import math
import random
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
START = datetime(2026, 10, 12, tzinfo=UTC)  # a Monday; EU DST 25 Oct, US DST 1 Nov
H = 3600.0

OFFICES = {  # key: (tz, share of staff, tenant, NAT addresses)
    "BER": ("Europe/Berlin", 0.38, "eu", ["185.220.14.10", "185.220.14.11"]),
    "LON": ("Europe/London", 0.17, "eu", ["81.149.77.2"]),
    "CHI": ("America/Chicago", 0.28, "us", ["64.107.41.130", "64.107.41.131"]),
    "SEA": ("America/Los_Angeles", 0.17, "us", ["50.47.212.66"]),
}
TENANT_SOURCE = {"eu": "aws.partner/okta.com/acme-eu/okta-logs",
                 "us": "aws.partner/okta.com/acme-us/okta-logs"}
MESSAGES = {
    "user.session.start": "User login to Okta",
    "user.session.end": "User logout from Okta",
    "user.authentication.sso": "User single sign on to app",
    "user.authentication.auth_via_mfa": "Authentication of user via MFA",
    "system.push.send_factor_verify_push": "Push notification sent to Okta Verify",
    "system.sms.send_factor_verify_message": "Send SMS verification message",
    "user.mfa.okta_verify.deny_push": "User rejected Okta push verify",
    "app.oauth2.as.token.grant.refresh_token": "OAuth2 refresh token is granted",
    "security.threat.detected": "Request from suspicious actor",
    "user.account.reset_password": "Reset password for user",
}
UA = {
    "laptop": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/129.0", "Windows 10", "CHROME", "Computer"),
    "mac": ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/605.1.15", "Mac OS X", "SAFARI", "Computer"),
    "phone": ("OktaVerify/9.27.0 (iPhone; iOS 18.0)", "iOS", "UNKNOWN", "Mobile"),
    "bot": ("python-requests/2.31.0", "Unknown", "UNKNOWN", "Unknown"),
    "svc": ("okhttp/4.12.0", "Unknown", "UNKNOWN", "Computer"),
}

# An event before JSON: [ts, type, actor, ip, ipkind, result, reason, threat, tenant, device, who]
# actor: ("id", "alternateId", "displayName"); ipkind: office|home|mobile|ext; who: user
# index (or -1 for the internet and integration accounts).


def iso(ts, ms=True):
    d = datetime.fromtimestamp(ts, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z" if ms else d.strftime("%Y-%m-%dT%H:%M:%SZ")


def rand_ip(rng, pool="resi"):
    if pool == "dc":
        a = rng.choice([45, 104, 138, 146, 159, 167, 178, 192, 209])
    elif pool == "mobile":
        a = rng.choice([100, 172, 176, 31, 92, 166, 174])
    else:
        a = rng.choice([2, 5, 24, 37, 41, 46, 62, 77, 79, 83, 89, 91, 94, 95, 98, 109, 115, 120, 151, 176, 181, 186, 187, 189, 190, 201])
    return f"{a}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def okta_id(rng, prefix="00u"):
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(rng.choice(chars) for _ in range(17))


def uuid_of(rng):
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def poisson(rng, lam):
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
    L, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= L:
            return k
        k += 1


def local_ts(day, hours, tz):
    base = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return (base + timedelta(hours=hours)).timestamp()  # wall-clock hours, DST aware


FIRST = ["anna", "ben", "carla", "david", "eva", "felix", "greta", "hugo", "ines", "jonas",
         "karen", "leo", "maria", "noah", "olga", "paul", "rosa", "sam", "tina", "uwe",
         "vera", "will", "xenia", "yusuf", "zoe", "amir", "beth", "chen", "dana", "emre"]
LAST = ["meyer", "schmidt", "smith", "jones", "garcia", "nguyen", "kowalski", "rossi",
        "brown", "fischer", "weber", "taylor", "lopez", "kim", "patel", "wagner", "becker",
        "miller", "davis", "khan", "novak", "silva", "walker", "young", "hall", "moreau"]


def make_users(rng, n):
    users, seen = [], set()
    keys = list(OFFICES)
    weights = [OFFICES[k][1] for k in keys]
    for i in range(n):
        office = rng.choices(keys, weights)[0]
        f, l = rng.choice(FIRST), rng.choice(LAST)
        login = f"{f}.{l}"
        while login in seen:
            login = f"{f}.{l}{rng.randrange(2, 99)}"
        seen.add(login)
        tz, _, tenant, nats = OFFICES[office]
        users.append({
            "id": okta_id(rng), "login": login + "@acme-group.example", "name": f"{f.title()} {l.title()}",
            "office": office, "tz": tz, "tenant": tenant, "nat": rng.choice(nats),
            "home": rand_ip(rng), "factor": rng.choices(["push", "totp", "sms"], [0.62, 0.26, 0.12])[0],
            "laptop": rng.choice(["laptop", "mac"]), "phone": rng.random() < 0.72,
            "second": rng.random() < 0.15, "early": rng.gauss(0, 0.6),
            "remote": rng.random() < 0.12,  # fully remote people
        })
    return users


class Org:
    def __init__(self, seed, n_users, days):
        self.rng = random.Random(f"outside-{seed}-org")
        self.users = make_users(self.rng, n_users)
        self.days = days
        self.t0 = START.timestamp()
        self.t1 = self.t0 + days * 86400
        self.ev = []
        self.holiday = None  # (date, set of offices)

    def actor(self, u):
        return (u["id"], u["login"], u["name"])

    def add(self, ts, etype, actor, ip, ipkind, result="SUCCESS", reason=None, threat="false",
            tenant="eu", device="laptop", who=-1):
        if self.t0 <= ts < self.t1:
            self.ev.append([ts, etype, actor, ip, ipkind, result, reason, threat, tenant, device, who])

    # --- people -------------------------------------------------------------------
    def mfa(self, rng, t, u, ui, ip, ipkind, device):
        a, ten = self.actor(u), u["tenant"]
        if u["factor"] == "push":
            self.add(t + 1, "system.push.send_factor_verify_push", a, ip, ipkind, tenant=ten, device=device, who=ui)
            r = rng.random()
            if r < 0.004:  # tapped "No" by mistake, then retried
                t += rng.uniform(5, 20)
                self.deny(t, u, ui, ip, ipkind, device)
                t += rng.uniform(5, 30)
                self.add(t, "system.push.send_factor_verify_push", a, ip, ipkind, tenant=ten, device=device, who=ui)
            elif r < 0.015:  # missed it, push again
                t += rng.uniform(30, 90)
                self.add(t, "system.push.send_factor_verify_push", a, ip, ipkind, tenant=ten, device=device, who=ui)
            self.add(t + rng.uniform(4, 25), "user.authentication.auth_via_mfa", a, ip, ipkind, tenant=ten, device=device, who=ui)
        else:
            if u["factor"] == "sms":
                self.add(t + 1, "system.sms.send_factor_verify_message", a, ip, ipkind, tenant=ten, device=device, who=ui)
            if rng.random() < 0.02:
                t += rng.uniform(8, 30)
                self.add(t, "user.authentication.auth_via_mfa", a, ip, ipkind, "FAILURE", "INVALID_CREDENTIALS",
                         tenant=ten, device=device, who=ui)
            self.add(t + rng.uniform(8, 40), "user.authentication.auth_via_mfa", a, ip, ipkind, tenant=ten, device=device, who=ui)

    def deny(self, t, u, ui, ip, ipkind, device, actor=None):
        a = actor or self.actor(u)
        if u["tenant"] == "us":  # Classic
            self.add(t, "user.mfa.okta_verify.deny_push", a, ip, ipkind, "FAILURE", "User rejected Okta Verify push",
                     tenant="us", device=device, who=ui)
        else:  # Identity Engine
            self.add(t, "user.authentication.auth_via_mfa", a, ip, ipkind, "FAILURE", "INVALID_CREDENTIALS",
                     tenant="eu", device=device, who=ui)

    def sign_in(self, rng, t, u, ui, ip, ipkind, device, fail_p=0.045):
        a, ten = self.actor(u), u["tenant"]
        if rng.random() < fail_p:
            k = 1
            while rng.random() < 0.38 and k < 7:
                k += 1
            tt = t - k * rng.uniform(6, 35)
            for i in range(k):
                if rng.random() < 0.12:  # typo in the username: Okta cannot resolve it
                    typo = u["login"].replace(".", "", 1) if rng.random() < 0.5 else u["login"][:-1] + "x"
                    fa = ("unknown", typo, "unknown")
                else:
                    fa = a
                reason = "LOCKED_OUT" if i >= 4 else rng.choice(["VERIFICATION_ERROR", "INVALID_CREDENTIALS"])
                self.add(tt, "user.session.start", fa, ip, ipkind, "FAILURE", reason, tenant=ten, device=device, who=ui)
                tt += rng.uniform(6, 35)
            if k >= 5:
                t += rng.uniform(900, 3600)  # called the help desk to be unlocked
        self.add(t, "user.session.start", a, ip, ipkind, tenant=ten, device=device, who=ui)
        self.mfa(rng, t, u, ui, ip, ipkind, device)

    def person_day(self, rng, u, ui, day):
        tz, wd = u["tz"], day.weekday()
        off = self.holiday and self.holiday[0] == day and u["office"] in self.holiday[1]
        a = self.actor(u)
        workday = wd < 5 and not off and rng.random() > 0.05  # ~5% on leave
        lt = lambda h: local_ts(day, h, tz)
        if u["phone"]:  # mail app on the phone refreshes its token all day
            h = rng.uniform(6.5, 8.5)
            while h < 23:
                self.add(lt(h), "app.oauth2.as.token.grant.refresh_token", a, rand_ip(rng, "mobile"), "mobile",
                         tenant=u["tenant"], device="phone", who=ui)
                h += rng.uniform(1.5, 3.5)
        if not workday:
            if rng.random() < (0.02 if wd < 5 else 0.07):
                for _ in range(rng.choice([1, 1, 2])):
                    self.sign_in(rng, lt(rng.uniform(9, 22)), u, ui, u["home"], "home", u["laptop"])
            return
        wfh = u["remote"] or rng.random() < (0.5 if wd in (0, 4) else 0.3)
        ip, ipk = (u["home"], "home") if wfh else (u["nat"], "office")
        arrive = rng.gauss(8.4 if u["tenant"] == "us" else 8.8, 0.55) + u["early"] - (0.2 if wd == 0 else 0)
        arrive = min(max(arrive, 6.0), 11.5)
        leave = arrive + max(5.5, rng.gauss(8.6, 0.7)) - (0.6 if wd == 4 else 0)
        lunch = rng.gauss(12.3, 0.35)
        lunch_end = lunch + rng.uniform(0.5, 1.0)
        dev = u["laptop"]
        if wd == 0 or rng.random() < 0.78:  # sessions expire over the weekend
            self.sign_in(rng, lt(arrive), u, ui, ip, ipk, dev)
        if u["second"] and rng.random() < 0.4:
            self.sign_in(rng, lt(arrive + rng.uniform(0.1, 3)), u, ui, ip, ipk, "mac" if dev == "laptop" else "laptop")
        if u["phone"] and rng.random() < (0.5 if wd == 0 else 0.25):
            self.sign_in(rng, lt(rng.uniform(arrive - 1, leave)), u, ui, rand_ip(rng, "mobile"), "mobile", "phone")
        n_sso = poisson(rng, 7.5 if wd == 0 else 5.5)
        for _ in range(n_sso):
            h = rng.uniform(arrive, leave)
            if lunch <= h < lunch_end and rng.random() < 0.8:
                continue  # the lunch dip
            self.add(lt(h), "user.authentication.sso", a, ip, ipk, tenant=u["tenant"], device=dev, who=ui)
        h = arrive + rng.uniform(0.5, 1.5)
        while h < leave:
            if not (lunch <= h < lunch_end):
                self.add(lt(h), "app.oauth2.as.token.grant.refresh_token", a, ip, ipk, tenant=u["tenant"], device=dev, who=ui)
            h += rng.uniform(1.0, 2.0)
        if rng.random() < 0.15:  # re-authenticates after lunch
            self.sign_in(rng, lt(lunch_end + rng.uniform(0, 0.3)), u, ui, ip, ipk, dev)
        if rng.random() < 0.35:
            self.add(lt(leave), "user.session.end", a, ip, ipk, tenant=u["tenant"], device=dev, who=ui)
        if rng.random() < 0.1:  # an evening look at the mail from home
            self.sign_in(rng, lt(rng.uniform(19, 23)), u, ui, u["home"], "home", dev)

    def people(self, seed):
        for ui, u in enumerate(self.users):
            rng = random.Random(f"outside-{seed}-user-{ui}")
            for d in range(-1, self.days + 1):
                self.person_day(rng, u, ui, (START + timedelta(days=d)).date())

    # --- the internet and machines ---------------------------------------------------
    def background_noise(self, seed):
        rng = random.Random(f"outside-{seed}-noise")
        t = self.t0
        while True:  # bots trying leaked or guessed usernames, one at a time
            t += rng.expovariate(1.4 / H)
            if t >= self.t1:
                break
            real = rng.random() < 0.2
            u = rng.choice(self.users)
            act = (u["id"], u["login"], u["name"]) if real else ("unknown", f"{rng.choice(FIRST)}{rng.randrange(100)}@mail.example", "unknown")
            self.add(t, "user.session.start", act, rand_ip(rng, rng.choice(["dc", "resi"])), "ext", "FAILURE",
                     "VERIFICATION_ERROR", "true" if rng.random() < 0.35 else "false", rng.choice(["eu", "us"]), "bot")
        t = self.t0
        while True:  # ThreatInsight blocking stray requests
            t += rng.expovariate(0.35 / H)
            if t >= self.t1:
                break
            self.add(t, "security.threat.detected", ("unknown", "unknown", "unknown"), rand_ip(rng, "dc"), "ext", "DENY",
                     "Login failures", "true", rng.choice(["eu", "us"]), "bot")
        t = self.t0
        while True:  # a scanner trying a handful of names from one address within a minute
            t += rng.expovariate(1 / (7 * H))
            if t >= self.t1:
                break
            ip = rand_ip(rng, "dc")
            for _ in range(rng.randint(3, 7)):
                t += rng.uniform(2, 15)
                self.add(t, "user.session.start", ("unknown", rng.choice(["admin", "test", "root", "info", "support"]) + "@acme-group.example", "unknown"),
                         ip, "ext", "FAILURE", "VERIFICATION_ERROR", "true" if rng.random() < 0.5 else "false", "eu", "bot")
        for k, (period, name) in enumerate([(3600, "svc-backup"), (3600, "svc-hr-sync"), (900, "svc-monitor"), (21600, "svc-ldap-export")]):
            ip, aid = rand_ip(rng, "dc"), okta_id(rng)
            t = self.t0 + rng.uniform(0, period)
            while t < self.t1:
                self.add(t, "user.session.start", (aid, name + "@acme-group.example", name), ip, "ext",
                         tenant=["eu", "us"][k % 2], device="svc")
                t += period + rng.uniform(-30, 30)


# --- incidents --------------------------------------------------------------------
def org_ts(day_idx, hours, tz="Europe/Berlin"):
    return local_ts((START + timedelta(days=day_idx)).date(), hours, tz)


class Incidents:
    def __init__(self, org, seed):
        self.org, self.rng = org, random.Random(f"outside-{seed}-incidents")
        self.labels, self.busy = [], []
        self.drop = []  # (t0, t1, predicate) events removed
        self.fail = []  # (t0, t1, tenant set)
        self.vpn = None
        self.reset_people = (150, 300)

    def free(self, t0, t1, margin=3 * H):
        return all(t1 + margin <= a or t0 >= b + margin for a, b in self.busy)

    def label(self, kind, t0, t1, page, cls, note, block=True):
        if block:
            self.busy.append((t0, t1))
        d = {"kind": kind, "start": iso(t0, False), "end": iso(t1, False), "expect_page": page}
        if cls:
            d["class"] = cls
        d["note"] = "outside: " + note
        self.labels.append(d)

    def pick(self, days, hours, dur, tz="Europe/Berlin", weekdays=range(7), tries=400):
        """A free window: a day index in `days` whose weekday is in `weekdays`, a local start hour."""
        for _ in range(tries):
            d = self.rng.choice(list(days))
            if (START + timedelta(days=d)).weekday() not in weekdays:
                continue
            t0 = org_ts(d, self.rng.uniform(*hours), tz)
            t0 = round(t0 / 60) * 60
            if self.free(t0, t0 + dur):
                return t0
        raise SystemExit("no free window")

    def attackers(self, n, pool="resi"):
        return [rand_ip(self.rng, pool) for _ in range(n)]

    def fail_start(self, t, actor, ip, threat, tenant="eu"):
        self.org.add(t, "user.session.start", actor, ip, "ext", "FAILURE", "VERIFICATION_ERROR", threat, tenant, "bot")

    def victim_or_unknown(self, p_unknown):
        if self.rng.random() < p_unknown:
            return ("unknown", f"{self.rng.choice(FIRST)}.{self.rng.choice(LAST)}{self.rng.randrange(10, 999)}@acme-group.example", "unknown")
        u = self.rng.choice(self.org.users)
        return (u["id"], u["login"], u["name"])

    # benign events first, they shape when attacks may go
    def benign(self, seed):
        rng, org = self.rng, self.org
        # DST: first business mornings after each change (offices' day moves an hour in UTC)
        self.label("benign_dst", org_ts(14, 5, "Europe/Berlin"), org_ts(14, 12, "Europe/Berlin"), False, None,
                   "EU offices' first Monday after DST ended (25 Oct)")
        self.label("benign_dst", org_ts(21, 6, "America/Chicago"), org_ts(21, 12, "America/Chicago"), False, None,
                   "US offices' first Monday after DST ended (1 Nov)")
        # a regional public holiday on a weekday of weeks 3-4
        d = rng.choice([15, 16, 17, 18, 22, 23, 24, 25])
        offices = {"BER", "LON"} if rng.random() < 0.5 else {"CHI", "SEA"}
        tz = "Europe/Berlin" if "BER" in offices else "America/Chicago"
        day = (START + timedelta(days=d)).date()
        org.holiday = (day, offices)
        self.label("benign_holiday", org_ts(d, 0, tz), org_ts(d, 24, tz), False, None,
                   f"public holiday in {'+'.join(sorted(offices))}")

    def benign_after_people(self):
        rng, org = self.rng, self.org
        # help-desk reset wave: a forced password change, people try the old one first
        t0 = self.pick(range(8, 27), (8.5, 10.5), 2 * H, weekdays=range(5))
        n = rng.randint(*self.reset_people)
        region = rng.choice(["eu", "us"])
        people = [i for i, u in enumerate(org.users) if u["tenant"] == region]
        dur = rng.uniform(1.2, 2.0) * H
        if region == "us":
            t0 = self.pick(range(8, 27), (8.5, 10.5), dur, tz="America/Chicago", weekdays=range(5))
        for ui in rng.sample(people, min(n, len(people))):
            u = org.users[ui]
            t = t0 + rng.uniform(0, dur)
            ip, ipk = (u["nat"], "office") if rng.random() < 0.6 else (u["home"], "home")
            for _ in range(rng.choice([1, 1, 2])):
                org.add(t, "user.session.start", org.actor(u), ip, ipk, "FAILURE", "VERIFICATION_ERROR", tenant=u["tenant"], who=ui)
                t += rng.uniform(8, 40)
            org.add(t + rng.uniform(20, 200), "user.account.reset_password", org.actor(u), ip, ipk, tenant=u["tenant"], who=ui)
            org.sign_in(rng, t + rng.uniform(240, 600), u, ui, ip, ipk, u["laptop"], fail_p=0)
        self.label("benign_reset_wave", t0, t0 + dur + 600, False, None, f"{n} forced resets in {region}, old password first")
        # a service account with an expired password, failing from one address for hours
        dur = rng.uniform(4, 12) * H
        t0 = self.pick(range(8, 27), (0, 24), dur)
        ip, aid, per = rand_ip(rng, "dc"), okta_id(rng), rng.uniform(120, 420)
        t, k = t0, 0
        while t < t0 + dur:
            org.add(t, "user.session.start", (aid, "svc-jira-sync@acme-group.example", "svc-jira-sync"), ip, "ext",
                    "FAILURE", "LOCKED_OUT" if k >= 10 else "INVALID_CREDENTIALS", tenant="eu", device="svc")
            t += per + rng.uniform(-20, 20)
            k += 1
        self.label("benign_service_account", t0, t0 + dur, False, None, f"svc account fails every {per / 60:.0f} min from one address, {k} tries")
        # onboarding class behind one office NAT: typos, unknown usernames, then success
        office = rng.choice(list(OFFICES))
        tz, _, tenant, nats = OFFICES[office]
        t0 = self.pick(range(8, 27), (9, 10.5), 1.5 * H, tz=tz, weekdays=range(5))
        n = rng.randint(20, 40)
        nf = 0
        for _ in range(n):
            f, l = rng.choice(FIRST), rng.choice(LAST)
            login = f"{f}.{l}{rng.randrange(100, 999)}@acme-group.example"
            act = (okta_id(rng), login, f"{f} {l}")
            t = t0 + rng.uniform(0, 3600)
            for _ in range(rng.randint(1, 4)):
                fa = ("unknown", login.replace(".", "_", 1), "unknown") if rng.random() < 0.4 else act
                org.add(t, "user.session.start", fa, nats[0], "office", "FAILURE", "VERIFICATION_ERROR", tenant=tenant)
                t += rng.uniform(10, 60)
                nf += 1
            org.add(t, "user.session.start", act, nats[0], "office", tenant=tenant)
            org.add(t + 15, "user.authentication.auth_via_mfa", act, nats[0], "office", tenant=tenant)
        self.label("benign_nat_typos", t0, t0 + 1.5 * H, False, None, f"{n} new hires at {office}, {nf} failures")
        # a VPN change: from a morning on, everyone's home and office traffic leaves by new addresses
        for _ in range(200):
            d = self.rng.choice([x for x in range(9, 27) if (START + timedelta(days=x)).weekday() < 5])
            t0 = org_ts(d, 6, "Europe/Berlin")
            t1 = org_ts(d + 1, 0, "America/Los_Angeles")
            if self.free(t0, t1, margin=H):
                break
        self.vpn = (t0, t1, [rand_ip(rng, "dc") for _ in range(6)])
        self.label("benign_vpn_change", t0, t1, False, None, "all home/office traffic moves to 6 new VPN egress addresses")

    def attacks(self):
        """Every labelled attack of one seed, drawn in a fixed order (the same seed, the same bytes)."""
        org = self.org
        fails = defaultdict(list)  # expected background failures per hour of week
        for e in org.ev:
            if e[1] == "user.session.start" and e[5] == "FAILURE":
                fails[int((e[0] - org.t0) // H) % 168].append(1)
        exp_h = {h: len(v) / (org.days / 7) for h, v in fails.items()}
        self._quiet_stuffing()
        self._near_noise_stuffing(exp_h)
        self._distributed_spraying()
        self._push_fatigue()
        self._blocked_stuffing()
        self._outage()
        self._blind_spots()

    def _quiet_stuffing(self):
        """Stuffing on a quiet evening or weekend: 10-15 per 15 min for ~90 min."""
        rng, org = self.rng, self.org
        dur = rng.uniform(80, 100) * 60
        if rng.random() < 0.5:
            t0 = self.pick(range(8, 27), (19.5, 23), dur, weekdays=range(5))
        else:
            t0 = self.pick(range(8, 27), (10, 22), dur, weekdays=(5, 6))
        n, t = 0, t0
        while t < t0 + dur:
            for _ in range(rng.randint(10, 15)):
                self.fail_start(t + rng.uniform(0, 900), self.victim_or_unknown(0.7), rand_ip(rng),
                                "true" if rng.random() < 0.3 else "false", rng.choice(["eu", "us"]))
                n += 1
            t += 900
        self.label("quiet_stuffing", t0, t0 + dur, True, "low_and_slow", f"{n} failures over {dur / 60:.0f} min, rotating proxies")

    def _near_noise_stuffing(self, exp_h):
        """Stuffing close to the noise: 3-4x expected failures for ~1 h."""
        rng, org = self.rng, self.org
        dur = rng.uniform(50, 70) * 60
        t0 = self.pick(range(8, 27), (8, 21), dur, weekdays=range(5))
        hw = int((t0 - org.t0) // H) % 168
        expected = exp_h.get(hw, 1.0) * dur / H
        mult = rng.uniform(3, 4)
        n = max(12, round((mult - 1) * expected))
        for _ in range(n):
            self.fail_start(t0 + rng.uniform(0, dur), self.victim_or_unknown(rng.uniform(0.55, 0.75)), rand_ip(rng),
                            "true" if rng.random() < 0.5 else "false", rng.choice(["eu", "us"]))
        self.label("credential_stuffing", t0, t0 + dur, True, "low_and_slow",
                   f"{n} added to ~{expected:.0f} expected failures ({mult:.1f}x), as many addresses")

    def _distributed_spraying(self):
        """Distributed low-and-slow spraying."""
        rng, org = self.rng, self.org
        dur = rng.uniform(3, 4) * H
        t0 = self.pick(range(8, 27), (0, 24), dur)
        k, tot = rng.randint(4, 8), 0
        victims = rng.sample(range(len(org.users)), 50)
        for ip in self.attackers(k):
            for _ in range(rng.randint(2, 5)):
                u = org.users[victims.pop()]
                self.fail_start(t0 + rng.uniform(0, dur), org.actor(u), ip, "true" if rng.random() < 0.2 else "false", u["tenant"])
                tot += 1
        self.label("distributed_spraying", t0, t0 + dur, True, "low_and_slow", f"{k} addresses, {tot} accounts, one try each")

    def _push_fatigue(self):
        """Push fatigue on the Classic (US) and the Identity Engine (EU) tenant."""
        rng, org = self.rng, self.org
        for kind, tenant in (("mfa_push_fatigue", "us"), ("oie_push_fatigue", "eu")):
            dur = rng.uniform(15, 45) * 60
            tz = "America/Chicago" if tenant == "us" else "Europe/Berlin"
            t0 = self.pick(range(8, 27), (rng.choice([(7, 9), (18, 23), (0, 5)])), dur, tz=tz)
            ui = rng.choice([i for i, u in enumerate(org.users) if u["tenant"] == tenant and u["factor"] == "push"])
            u, ip = org.users[ui], rand_ip(rng, "dc")
            org.add(t0, "user.session.start", org.actor(u), ip, "ext", tenant=tenant, device="laptop", who=ui)
            t, pushes, denies = t0 + 5, 0, 0
            while t < t0 + dur:
                org.add(t, "system.push.send_factor_verify_push", org.actor(u), ip, "ext", tenant=tenant, who=ui)
                pushes += 1
                if rng.random() < 0.35:
                    org.deny(t + rng.uniform(3, 20), u, ui, ip, "ext", "laptop")
                    denies += 1
                t += rng.uniform(60, 200)
            if rng.random() < 0.4:
                org.add(t, "user.authentication.auth_via_mfa", org.actor(u), ip, "ext", tenant=tenant, who=ui)
            self.label(kind, t0, t0 + dur, True, "spike", f"{pushes} pushes, {denies} denied, one {tenant} user")

    def _blocked_stuffing(self):
        """Stuffing ThreatInsight half blocks."""
        rng, org = self.rng, self.org
        dur = rng.uniform(30, 75) * 60
        t0 = self.pick(range(8, 27), (0, 24), dur)
        rate = rng.uniform(15, 35)
        nb = nf = 0
        for _ in range(poisson(rng, rate * dur / 900)):
            t, ip = t0 + rng.uniform(0, dur), rand_ip(rng)
            if rng.random() < 0.5:
                org.add(t, "security.threat.detected", ("unknown", "unknown", "unknown"), ip, "ext", "DENY",
                        "Login failures", "true", rng.choice(["eu", "us"]), "bot")
                nb += 1
            else:
                self.fail_start(t, self.victim_or_unknown(0.6), ip, "true" if rng.random() < 0.5 else "false", rng.choice(["eu", "us"]))
                nf += 1
        self.label("blocked_stuffing", t0, t0 + dur, True, "low_and_slow", f"{nb} blocked + {nf} failed over {dur / 60:.0f} min")

    def _outage(self):
        """An outage at a busy hour: sign-ins fail, or never reach Okta."""
        rng, org = self.rng, self.org
        dur = rng.uniform(30, 90) * 60
        scope = {"eu", "us"} if rng.random() < 0.5 else {rng.choice(["eu", "us"])}
        tz = "America/Chicago" if scope == {"us"} else "Europe/Berlin"  # in the affected people's hours
        t0 = self.pick(range(8, 27), (9, 16), dur, tz=tz, weekdays=range(5))
        if rng.random() < 0.5:
            self.fail.append((t0, t0 + dur, scope))
            how = "sign-ins fail"
        else:
            self.drop.append((t0, t0 + dur, lambda e, s=scope: e[10] >= 0 and e[8] in s))
            how = "people's events vanish"
        self.label("outage", t0, t0 + dur, True, "availability", f"{how} ({'+'.join(sorted(scope))}) for {dur / 60:.0f} min")

    def _blind_spots(self):
        """A 35-55 min blind spot at the weekday peak and at night."""
        rng, org = self.rng, self.org
        for kind, hours, wds in (("short_gap_peak", (9.5, 15.5), range(5)), ("short_gap_night", (4.5, 6.5), range(7))):
            dur = rng.uniform(35, 55) * 60
            t0 = self.pick(range(8, 27), hours, dur, tz="Europe/Berlin", weekdays=wds)
            self.drop.append((t0, t0 + dur, lambda e: True))
            self.label(kind, t0, t0 + dur, True, "availability", f"no events for {dur / 60:.0f} min")

    def apply(self):
        org, rng = self.org, random.Random(self.rng.random())
        extra = []
        for e in org.ev:
            for a, b, scope in self.fail:
                if a <= e[0] < b and e[10] >= 0 and e[8] in scope:
                    if e[1] == "user.session.start" and e[5] == "SUCCESS":
                        e[5], e[6] = "FAILURE", "INVALID_CREDENTIALS"
                        for _ in range(rng.choice([0, 1, 1, 2, 3])):  # people retry
                            r = list(e)
                            r[0] += rng.uniform(20, 300)
                            extra.append(r)
                    elif e[1] != "app.oauth2.as.token.grant.refresh_token":
                        e[1] = None  # no MFA, no SSO: they never got in
        org.ev = [e for e in org.ev + extra if e[1] and not any(a <= e[0] < b and p(e) for a, b, p in self.drop)]
        if self.vpn:
            a, b, pool = self.vpn
            for e in org.ev:
                if a <= e[0] < b and e[4] in ("office", "home") and e[10] >= 0:
                    e[3] = pool[e[10] % len(pool)]


def write(org, out, seed):
    rng = random.Random(f"outside-{seed}-ids")
    org.ev.sort(key=lambda e: e[0])
    n = 0
    with gzip.GzipFile(out, "wb", mtime=0) if out.endswith(".gz") else open(out, "wb") as f:
        for ts, et, actor, ip, ipkind, res, reason, threat, tenant, device, who in org.ev:
            ua, os_, br, dev = UA["phone" if ipkind == "mobile" else device] if device in UA else UA["laptop"]
            detail = {
                "uuid": uuid_of(rng), "published": iso(ts), "eventType": et, "version": "0",
                "severity": "INFO" if res == "SUCCESS" else "WARN", "displayMessage": MESSAGES[et],
                "actor": {"id": actor[0], "type": "User", "alternateId": actor[1], "displayName": actor[2], "detailEntry": None},
                "client": {"ipAddress": ip, "device": dev, "zone": "null", "id": None,
                           "userAgent": {"rawUserAgent": ua, "os": os_, "browser": br}},
                "outcome": {"result": res, "reason": reason},
                "authenticationContext": {"authenticationStep": 0, "externalSessionId": "idx" + f"{rng.getrandbits(64):016x}"},
                "securityContext": {"isProxy": ipkind == "ext" and threat == "true"},
                "debugContext": {"debugData": {"requestId": f"{rng.getrandbits(80):020x}", "threatSuspected": threat}},
                "transaction": {"type": "WEB", "id": f"{rng.getrandbits(64):016x}"},
            }
            if et == "security.threat.detected":
                detail["debugContext"]["debugData"]["threatDetections"] = '{"Login failures":"HIGH"}'
            env = {"version": "0", "id": uuid_of(rng), "detail-type": "SystemLog", "source": TENANT_SOURCE[tenant],
                   "account": "111122223333", "time": iso(ts, False), "region": "eu-central-1", "resources": [], "detail": detail}
            f.write((json.dumps(env, separators=(",", ":")) + "\n").encode())
            n += 1
    return n


def summary(org, labels):
    out = []
    wk = "Mon Tue Wed Thu Fri Sat Sun".split()
    per = defaultdict(Counter)
    ss = defaultdict(Counter)
    for e in org.ev:
        d = datetime.fromtimestamp(e[0], UTC)
        per[d.weekday()][d.hour] += 1
        if e[1] == "user.session.start":
            ss[d.weekday()][e[5]] += 1
    weeks = org.days / 7
    out.append("events per UTC hour by weekday (mean over weeks):")
    out.append("     " + " ".join(f"{h:>5}" for h in range(24)))
    for w in range(7):
        out.append(f"{wk[w]}  " + " ".join(f"{per[w][h] / weeks:5.0f}" for h in range(24)))
    out.append("user.session.start per weekday (mean): " + ", ".join(
        f"{wk[w]} {ss[w]['SUCCESS'] / weeks:.0f} ok / {ss[w]['FAILURE'] / weeks:.0f} failed" for w in range(7)))
    types = Counter(e[1] for e in org.ev)
    out.append("event types: " + ", ".join(f"{k} {v}" for k, v in types.most_common()))
    daily = Counter(datetime.fromtimestamp(e[0], UTC).date() for e in org.ev)
    out.append("events per day: " + " ".join(f"{d.strftime('%m-%d')}:{daily[d]}" for d in sorted(daily)))
    for lab in labels:
        a = datetime.fromisoformat(lab["start"].replace("Z", "+00:00")).timestamp()
        b = datetime.fromisoformat(lab["end"].replace("Z", "+00:00")).timestamp()
        def count(lo, hi):
            c = Counter()
            for e in org.ev:
                if lo <= e[0] < hi and e[1] in ("user.session.start", "security.threat.detected"):
                    c[e[5]] += 1
            return c
        now, before = count(a, b), count(a - 7 * 86400, b - 7 * 86400)
        out.append(f"{lab['kind']:<24} {lab['start']} .. {lab['end']}  starts+threats now {dict(now)} week before {dict(before)}  ({lab['note']})")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example (about 30 s a seed; docs/outside-traffic.md has the measured figures):\n"
        "  scripts/outside-traffic.py --seed 1 --out o1.ndjson.gz --labels o1.labels.jsonl --summary\n"
        "  authpulse backtest --config scripts/outside-org.toml --events o1.ndjson.gz --alerts-out o1.alerts.jsonl\n"
        "  authpulse evaluate --alerts o1.alerts.jsonl --labels o1.labels.jsonl --days 28",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--users", type=int, default=1500)
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--out", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--no-incidents", action="store_true")
    p.add_argument("--reset-people", default="150-300", help="size of the help-desk reset wave, LO-HI people")
    p.add_argument("--summary", action="store_true", help="print a text summary of the traffic to stderr")
    a = p.parse_args()
    org = Org(a.seed, a.users, a.days)
    inc = Incidents(org, a.seed)
    inc.reset_people = tuple(int(x) for x in a.reset_people.split("-"))
    if not a.no_incidents:
        inc.benign(a.seed)
    org.people(a.seed)
    org.background_noise(a.seed)
    if not a.no_incidents:
        inc.benign_after_people()
        inc.attacks()
        inc.apply()
    inc.labels.sort(key=lambda d: d["start"])
    n = write(org, a.out, a.seed)
    with open(a.labels, "w") as f:
        for lab in inc.labels:
            f.write(json.dumps(lab) + "\n")
    print(f"{n} events, {len(inc.labels)} labels -> {a.out}, {a.labels}", file=sys.stderr)
    if a.summary:
        print(summary(org, inc.labels), file=sys.stderr)


if __name__ == "__main__":
    main()
