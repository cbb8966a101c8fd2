#!/usr/bin/env node
/**
 * A third-party OCPP charge point for fleetcharge's interoperability test.
 *
 * Built on the npm package `ocpp-rpc` (not our code) in strict mode: every message in both
 * directions is validated against the official OCA JSON schemas bundled with that package, so
 * a schema violation by the central system fails the exchange. One EVSE (id 1, connector 1).
 *
 * Usage:
 *   node charge_point.js URL IDENTITY PASSWORD VERSION VEHICLE_ID [options]
 *
 *   URL        base websocket URL of the central system, e.g. ws://127.0.0.1:9000
 *              (ocpp-rpc appends "/IDENTITY", OCPP-J 1.6 §3.1.1)
 *   VERSION    1.6 | 2.0.1 | 2.1 (subprotocol ocpp1.6 / ocpp2.0.1 / ocpp2.1)
 *   options    --rate-units A,W      schedule units the station accepts (A and/or W; answered
 *                                    as ChargingScheduleAllowedChargingRateUnit Current/Power
 *                                    on 1.6, SmartChargingCtrlr.RateUnit on 2.x)
 *              --max-periods 24      ChargingScheduleMaxPeriods / PeriodsPerSchedule
 *              --meter-start-wh 0    energy register at the start of the transaction [Wh]
 *              --soc 50              the EV's state of charge reported in MeterValues [%]
 *              --departure ISO       2.x NotifyEVChargingNeeds departureTime (required on 2.x)
 *              --energy-wh N         2.x NotifyEVChargingNeeds energyAmount [Wh] (required on 2.x)
 *              --voltage 230         EV max voltage for acChargingParameters [V]
 *              --timeout-s 20        give up after this many seconds
 *
 * Flow: BootNotification (the clock is set from its currentTime, as a station synchronises to
 * its central system, OCPP 1.6 §4.2 / 2.0.1 B01) → Heartbeat → StatusNotification Available →
 * waits until the central system has installed a TxDefaultProfile and a station max profile
 * (answering GetConfiguration / GetVariables and SetChargingProfile meanwhile) → Authorize →
 * StartTransaction (1.6) or TransactionEvent Started + NotifyEVChargingNeeds (2.x) →
 * MeterValues → waits for a TxProfile for its transaction and for the GetCompositeSchedule
 * that verifies it → StopTransaction / TransactionEvent Ended → StatusNotification Available.
 * The plan under test defers charging, so the register does not move during the run: the
 * meter reports the start register, 0 W and the given SoC.
 *
 * Output: one JSON line on stdout with every call in both directions (action, payload, answer)
 * and every error; exit status 0 only if the whole exchange succeeded with no CALLERROR and no
 * strict-mode schema failure in either direction.
 */
'use strict';

const { parseArgs } = require('node:util');
const { randomUUID } = require('node:crypto');
const { RPCClient, createRPCError, createValidator } = require('ocpp-rpc');
const OCPP21_SCHEMAS = require('ocpp-rpc/lib/schemas/ocpp2_1.json');

const SUBPROTOCOL = { '1.6': 'ocpp1.6', '2.0.1': 'ocpp2.0.1', '2.1': 'ocpp2.1' };
const MAX_PURPOSE = { '1.6': 'ChargePointMaxProfile', '2.0.1': 'ChargingStationMaxProfile',
                      '2.1': 'ChargingStationMaxProfile' };
const UNIT_WORD_16 = { A: 'Current', W: 'Power' };  // OCPP 1.6 §9.4 ChargingScheduleAllowedChargingRateUnit
const EVSE_ID = 1;
const STACK_LEVELS = 8;  // ChargeProfileMaxStackLevel / ProfileStackLevel of this station
const POLL_MS = 20;

/**
 * ocpp-rpc 2.2.1 looks schemas up as `urn:<Action>.req` / `.conf`, but its bundled OCPP 2.1
 * schemas carry the OCA ids `urn:<Action>Request` / `Response`, so strict mode fails every 2.1
 * call with "Schema 'urn:BootNotification.req' is missing" (ocpp-rpc PRs #94/#98). Re-key the
 * same bundled schemas and hand them in as the ocpp2.1 validator; the schemas are unchanged.
 */
function ocpp21Validator() {
    const rekeyed = OCPP21_SCHEMAS.map((schema) => {
        const id = schema.$id
            .replace(/Request$/, '.req')
            .replace(/Response$/, '.conf');
        return { ...schema, $id: id };
    });
    return createValidator('ocpp2.1', rekeyed);
}

function usage(message) {
    process.stderr.write(`charge_point.js: ${message}\n` +
        'usage: node charge_point.js URL IDENTITY PASSWORD VERSION VEHICLE_ID ' +
        '[--rate-units A,W] [--max-periods N] [--meter-start-wh WH] [--soc PCT] ' +
        '[--departure ISO] [--energy-wh WH] [--voltage V] [--timeout-s S]\n');
    process.exit(2);
}

function parseCommandLine(argv) {
    const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
            'rate-units': { type: 'string', default: 'A,W' },
            'max-periods': { type: 'string', default: '24' },
            'meter-start-wh': { type: 'string', default: '0' },
            soc: { type: 'string', default: '50' },
            departure: { type: 'string' },
            'energy-wh': { type: 'string' },
            voltage: { type: 'string', default: '230' },
            'timeout-s': { type: 'string', default: '20' },
        },
    });
    if (positionals.length !== 5) usage(`expected 5 arguments, got ${positionals.length}`);
    const [url, identity, password, version, vehicleId] = positionals;
    if (!(version in SUBPROTOCOL)) usage(`VERSION ${version}: one of ${Object.keys(SUBPROTOCOL)}`);
    const rateUnits = values['rate-units'].split(',').map((u) => u.trim());
    if (!rateUnits.length || rateUnits.some((u) => !(u in UNIT_WORD_16))) {
        usage(`--rate-units ${values['rate-units']}: a comma-separated list of A and W`);
    }
    const number = (name) => {
        const value = Number(values[name]);
        if (!Number.isFinite(value) || value < 0) usage(`--${name} ${values[name]}: a number >= 0`);
        return value;
    };
    const options = {
        url, identity, password, version, vehicleId, rateUnits,
        maxPeriods: number('max-periods'),
        meterStartWh: Math.round(number('meter-start-wh')),
        socPercent: number('soc'),
        voltageV: number('voltage'),
        timeoutMs: number('timeout-s') * 1000,
        departure: values.departure,
        energyWh: values['energy-wh'] === undefined ? undefined : number('energy-wh'),
    };
    if (version !== '1.6' && (options.departure === undefined || options.energyWh === undefined)) {
        usage('OCPP 2.x needs --departure and --energy-wh for NotifyEVChargingNeeds');
    }
    if (options.departure !== undefined && Number.isNaN(Date.parse(options.departure))) {
        usage(`--departure ${options.departure}: an ISO 8601 date-time`);
    }
    return options;
}

// --- smart charging: installed profiles and the composite schedule -------------------------

/** A SetChargingProfile request in version-neutral form (2.x: the first chargingSchedule). */
function normaliseProfile(version, params) {
    const raw = version === '1.6' ? params.csChargingProfiles : params.chargingProfile;
    const schedule = Array.isArray(raw.chargingSchedule) ? raw.chargingSchedule[0] : raw.chargingSchedule;
    return {
        id: version === '1.6' ? raw.chargingProfileId : raw.id,
        evseId: version === '1.6' ? params.connectorId : params.evseId,
        stackLevel: raw.stackLevel,
        purpose: raw.chargingProfilePurpose,
        kind: raw.chargingProfileKind,
        transactionId: raw.transactionId,
        validFrom: raw.validFrom === undefined ? undefined : Date.parse(raw.validFrom),
        validTo: raw.validTo === undefined ? undefined : Date.parse(raw.validTo),
        schedule,
    };
}

/** Where a profile's schedule starts [ms], or null when it is not anchored yet. */
function scheduleStartMs(profile, txStartMs) {
    if (profile.kind === 'Absolute') return Date.parse(profile.schedule.startSchedule);
    // Relative: "relative to start of charging" (1.6 §7.13) = the transaction start here
    return txStartMs ?? null;
}

/** The period of `profile` in force at time `t` [ms], or null (1.6 §3.13.2 / 2.x K08). */
function periodAt(profile, t, txStartMs) {
    if (profile.validFrom !== undefined && t < profile.validFrom) return null;
    if (profile.validTo !== undefined && t >= profile.validTo) return null;
    const start = scheduleStartMs(profile, txStartMs);
    if (start === null || t < start) return null;
    const elapsedS = (t - start) / 1000;
    const { duration, chargingSchedulePeriod: periods } = profile.schedule;
    if (duration !== undefined && elapsedS >= duration) return null;
    let current = null;
    for (const period of periods) {
        if (period.startPeriod <= elapsedS) current = period;
    }
    return current;
}

/** Times [ms] in (from, to) at which `profile` may change its limit. */
function changeTimes(profile, from, to, txStartMs) {
    const times = [profile.validFrom, profile.validTo];
    const start = scheduleStartMs(profile, txStartMs);
    if (start !== null) {
        for (const period of profile.schedule.chargingSchedulePeriod) {
            times.push(start + period.startPeriod * 1000);
        }
        if (profile.schedule.duration !== undefined) {
            times.push(start + profile.schedule.duration * 1000);
        }
    }
    return times.filter((t) => t !== undefined && t > from && t < to);
}

class SmartCharging {
    constructor(version, rateUnits, maxPeriods) {
        this.version = version;
        this.rateUnits = rateUnits;
        this.maxPeriods = maxPeriods;
        this.installed = new Map();  // profile id -> normalised profile
        this.transaction = null;     // {id, evseId, startMs} while one is running
    }

    /**
     * Install a profile or say why not: the station-side rules of OCPP 1.6 §3.13 / §5.16 and
     * 2.0.1 K01 that a central system must respect. Returns [status, reason].
     */
    set(params) {
        const p = normaliseProfile(this.version, params);
        const maxPurpose = MAX_PURPOSE[this.version];
        const periods = p.schedule.chargingSchedulePeriod;
        if (!this.rateUnits.includes(p.schedule.chargingRateUnit)) {
            return ['Rejected',
                `rate unit ${p.schedule.chargingRateUnit} not in ${this.rateUnits} (1.6 §9.4, K01.FR.26)`];
        }
        if (periods.length > this.maxPeriods) {
            return ['Rejected', `${periods.length} periods > ChargingScheduleMaxPeriods ${this.maxPeriods} (1.6 §9.4)`];
        }
        if (periods[0].startPeriod !== 0 || periods.some((q, i) => i && q.startPeriod <= periods[i - 1].startPeriod)) {
            return ['Rejected', 'period starts must be 0, then increasing (1.6 §7.14, K01.FR.31/35)'];
        }
        if (p.stackLevel > STACK_LEVELS) {
            return ['Rejected', `stackLevel ${p.stackLevel} > ChargeProfileMaxStackLevel ${STACK_LEVELS}`];
        }
        if (p.evseId !== 0 && p.evseId !== EVSE_ID) {
            return ['Rejected', `no EVSE ${p.evseId} (K01.FR.28)`];
        }
        if (p.kind !== 'Absolute' && p.kind !== 'Relative') {
            return ['Rejected', `chargingProfileKind ${p.kind} is not supported by this station`];
        }
        if (p.kind === 'Absolute' && p.schedule.startSchedule === undefined) {
            return ['Rejected', 'an Absolute schedule needs startSchedule (K01.FR.40)'];
        }
        if (p.kind === 'Relative' && p.schedule.startSchedule !== undefined) {
            return ['Rejected', 'a Relative schedule has no startSchedule (K01.FR.41)'];
        }
        if (p.purpose === maxPurpose) {
            if (p.evseId !== 0) return ['Rejected', `${maxPurpose} only on connector/EVSE 0 (1.6 §3.13.1)`];
            if (p.kind === 'Relative') return ['Rejected', `${maxPurpose} cannot be Relative (K01.FR.38)`];
        } else if (p.purpose === 'TxProfile') {
            const tx = this.transaction;
            if (p.evseId === 0) {
                return ['Rejected', 'a TxProfile goes to a connector/EVSE > 0 (1.6 §3.13.1, K01.FR.16)'];
            }
            if (tx === null || tx.evseId !== p.evseId) {
                return ['Rejected', 'no active transaction on the EVSE (1.6 §3.13.1, K01.FR.09)'];
            }
            if (p.transactionId === undefined && this.version !== '1.6') {
                return ['Rejected', 'a 2.x TxProfile needs a transactionId (K01.FR.03)'];
            }
            if (p.transactionId !== undefined && p.transactionId !== tx.id) {
                return ['Rejected', `transactionId ${p.transactionId} is not the active ${tx.id} (K01.FR.33)`];
            }
        } else if (p.purpose !== 'TxDefaultProfile') {
            return ['Rejected', `purpose ${p.purpose} is not supported by this station`];
        }
        // same id, or same stackLevel + purpose (+ EVSE), replaces (1.6 §5.16.3, K01.FR.05)
        for (const [id, q] of this.installed) {
            if (id === p.id || (q.stackLevel === p.stackLevel && q.purpose === p.purpose && q.evseId === p.evseId)) {
                this.installed.delete(id);
            }
        }
        this.installed.set(p.id, p);
        return ['Accepted', null];
    }

    has(purpose) {
        return [...this.installed.values()].some((p) => p.purpose === purpose);
    }

    startTransaction(id, startMs) {
        this.transaction = { id, evseId: EVSE_ID, startMs };
    }

    /** End the transaction; its TxProfiles end with it ("for the duration of the current
     * transaction only", 1.6 §3.13.1). */
    stopTransaction() {
        for (const [id, p] of this.installed) {
            if (p.purpose === 'TxProfile') this.installed.delete(id);
        }
        this.transaction = null;
    }

    /** Highest stack level first: the prevailing profile is the valid one with the highest level. */
    _prevailing(profiles, t, txStartMs) {
        const sorted = [...profiles].sort((a, b) => b.stackLevel - a.stackLevel);
        for (const p of sorted) {
            const period = periodAt(p, t, txStartMs);
            if (period !== null) return { profile: p, period };
        }
        return null;
    }

    /**
     * The limit at `t` [ms]: TxProfile if one is in force, else TxDefaultProfile (EVSE before
     * station-wide), then the minimum with the station max profile (1.6 §3.13.4, 2.x K08).
     */
    _limitAt(t) {
        const tx = this.transaction;
        const all = [...this.installed.values()];
        const txStart = tx?.startMs;
        const txProfiles = tx ? all.filter((p) => p.purpose === 'TxProfile' && p.evseId === tx.evseId) : [];
        const defaults = (evse) => all.filter((p) => p.purpose === 'TxDefaultProfile' && p.evseId === evse);
        const charging = this._prevailing(txProfiles, t, txStart)
            ?? this._prevailing(defaults(EVSE_ID), t, txStart)
            ?? this._prevailing(defaults(0), t, txStart);
        const maximum = this._prevailing(all.filter((p) => p.purpose === MAX_PURPOSE[this.version]), t, txStart);
        const limits = [charging, maximum].filter((x) => x !== null);
        if (!limits.length) return null;
        const units = new Set(limits.map((x) => x.profile.schedule.chargingRateUnit));
        if (units.size > 1) return { unit: null };
        const winner = limits.reduce((a, b) => (Number(b.period.limit) < Number(a.period.limit) ? b : a));
        return { unit: [...units][0], limit: Number(winner.period.limit), numberPhases: winner.period.numberPhases };
    }

    /**
     * GetCompositeSchedule: the limits over [from, from + durationS) as periods relative to
     * `from` [s]. Returns null (answer Rejected) when some instant has no profile or the
     * profiles mix A and W, or a unit other than theirs is asked for.
     */
    composite(from, durationS, unitAsked) {
        const to = from + durationS * 1000;
        const txStart = this.transaction?.startMs;
        const times = new Set([from]);
        for (const p of this.installed.values()) {
            for (const t of changeTimes(p, from, to, txStart)) times.add(t);
        }
        const periods = [];
        let unit = null;
        for (const t of [...times].sort((a, b) => a - b)) {
            const limit = this._limitAt(t);
            if (limit === null || limit.unit === null) return null;
            if (unit !== null && limit.unit !== unit) return null;
            unit = limit.unit;
            const last = periods[periods.length - 1];
            if (last && last.limit === limit.limit && last.numberPhases === limit.numberPhases) continue;
            const period = { startPeriod: Math.round((t - from) / 1000), limit: limit.limit };
            if (limit.numberPhases !== undefined) period.numberPhases = limit.numberPhases;
            periods.push(period);
        }
        if (unitAsked !== undefined && unitAsked !== unit) return null;
        return { unit, periods };
    }
}

// --- the charge point -----------------------------------------------------------------------

class ChargePoint {
    constructor(options) {
        this.o = options;
        this.deadline = Date.now() + options.timeoutMs;
        this.clockOffsetMs = 0;
        this.smart = new SmartCharging(options.version, options.rateUnits, options.maxPeriods);
        this.received = [];          // calls from the central system and our answers
        this.sent = [];              // our calls and the central system's answers
        this.callErrors = [];        // CALLERRORs in either direction
        this.strictFailures = [];    // schema violations found by ocpp-rpc strict mode
        this.badMessages = [];
        this.compositeRequests = 0;
        this.seqNo = 0;
        this.txProfileAccepted = false;
        this.client = new RPCClient({
            endpoint: options.url,
            identity: options.identity,
            password: options.password,
            protocols: [SUBPROTOCOL[options.version]],
            strictMode: true,
            strictModeValidators: options.version === '2.1' ? [ocpp21Validator()] : [],
            reconnect: false,
            callTimeoutMs: options.timeoutMs,
        });
        this.client.on('strictValidationFailure', (event) => {
            this.strictFailures.push({
                method: event.method, outbound: event.outbound, isCall: event.isCall,
                by: event.outbound ? 'charge point' : 'central system',
                message: event.error.message, errors: event.error.details?.errors,
            });
        });
        this.client.on('badMessage', (event) => {
            this.badMessages.push({ message: String(event.buffer), error: event.error.message });
        });
        this.client.on('callError', (event) => {  // a CALLERROR we sent
            this.callErrors.push({ direction: 'to central system', method: event.method,
                                   code: event.error.rpcErrorCode, message: event.error.message });
        });
        this._registerHandlers();
    }

    now() {
        return Date.now() + this.clockOffsetMs;
    }

    iso(ms = this.now()) {
        return new Date(ms).toISOString();
    }

    _registerHandlers() {
        const record = (action, handler) => this.client.handle(action, ({ params }) => {
            const entry = { action, at: this.iso(), payload: params };
            this.received.push(entry);
            entry.answer = handler(params, entry);
            return entry.answer;
        });
        if (this.o.version === '1.6') {
            record('GetConfiguration', (params) => this._getConfiguration(params));
        } else {
            record('GetVariables', (params) => this._getVariables(params));
        }
        record('SetChargingProfile', (params, entry) => {
            const [status, reason] = this.smart.set(params);
            const profile = normaliseProfile(this.o.version, params);
            if (status === 'Accepted' && profile.purpose === 'TxProfile') this.txProfileAccepted = true;
            if (reason !== null) entry.reason = reason;
            return this.o.version === '1.6' || reason === null
                ? { status }
                : { status, statusInfo: { reasonCode: 'InvalidSchedule', additionalInfo: reason.slice(0, 1024) } };
        });
        record('GetCompositeSchedule', (params) => {
            this.compositeRequests += 1;
            return this._compositeSchedule(params);
        });
        this.client.handle(({ method, params }) => {  // anything else: NotImplemented
            this.received.push({ action: method, at: this.iso(), payload: params, answer: 'NotImplemented' });
            throw createRPCError('NotImplemented', `${method} is not implemented by this test station`);
        });
    }

    _getConfiguration(params) {
        const table = {
            ChargingScheduleAllowedChargingRateUnit: this.o.rateUnits.map((u) => UNIT_WORD_16[u]).join(','),
            ChargingScheduleMaxPeriods: String(this.o.maxPeriods),
            ChargeProfileMaxStackLevel: String(STACK_LEVELS),
            MaxChargingProfilesInstalled: String(3 * STACK_LEVELS),  // each level of the three purposes
        };
        const keys = params.key?.length ? params.key : Object.keys(table);
        const known = keys.filter((k) => k in table);
        const unknown = keys.filter((k) => !(k in table));
        const answer = { configurationKey: known.map((key) => ({ key, readonly: true, value: table[key] })) };
        if (unknown.length) answer.unknownKey = unknown;
        return answer;
    }

    _getVariables(params) {
        const table = {
            SmartChargingCtrlr: {
                Enabled: 'true',
                RateUnit: this.o.rateUnits.join(','),
                PeriodsPerSchedule: String(this.o.maxPeriods),
                ProfileStackLevel: String(STACK_LEVELS),
            },
        };
        return {
            getVariableResult: params.getVariableData.map(({ component, variable, attributeType }) => {
                const result = { component, variable };
                const values = table[component.name];
                if (values === undefined) return { ...result, attributeStatus: 'UnknownComponent' };
                if (!(variable.name in values)) return { ...result, attributeStatus: 'UnknownVariable' };
                if (attributeType !== undefined && attributeType !== 'Actual') {
                    return { ...result, attributeStatus: 'NotSupportedAttributeType' };
                }
                return { ...result, attributeStatus: 'Accepted', attributeValue: values[variable.name] };
            }),
        };
    }

    _compositeSchedule(params) {
        const evseId = this.o.version === '1.6' ? params.connectorId : params.evseId;
        const from = Math.floor(this.now() / 1000) * 1000;  // whole seconds: integer startPeriods
        // this station has one EVSE, so its consumption (EVSE 0) is that of EVSE 1
        const composite = evseId === 0 || evseId === EVSE_ID
            ? this.smart.composite(from, params.duration, params.chargingRateUnit) : null;
        if (composite === null) return { status: 'Rejected' };
        const schedule = {
            duration: params.duration,
            chargingRateUnit: composite.unit,
            chargingSchedulePeriod: composite.periods,
        };
        if (this.o.version === '1.6') {
            return {
                status: 'Accepted', connectorId: evseId, scheduleStart: this.iso(from),
                chargingSchedule: { ...schedule, startSchedule: this.iso(from) },
            };
        }
        return { status: 'Accepted', schedule: { evseId, scheduleStart: this.iso(from), ...schedule } };
    }

    async call(action, payload) {
        const entry = { action, at: this.iso(), payload };
        this.sent.push(entry);
        const failuresBefore = this.strictFailures.length;
        try {
            entry.response = await this.client.call(action, payload);
            return entry.response;
        } catch (error) {
            entry.error = { code: error.rpcErrorCode, message: error.message };
            const invalidHere = this.strictFailures.slice(failuresBefore)
                .some((f) => f.outbound && f.isCall && f.method === action);  // never sent
            if (error.rpcErrorCode && !invalidHere) {
                this.callErrors.push({ direction: 'from central system', method: action,
                                       code: error.rpcErrorCode, message: error.message });
            }
            throw new Error(`${action} failed: ${error.rpcErrorCode ?? ''} ${error.message}`);
        }
    }

    async waitFor(predicate, what) {
        while (!predicate()) {
            if (Date.now() > this.deadline) throw new Error(`timed out waiting for ${what}`);
            await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
    }

    /** The sampled values of one reading: register, power and SoC (OCPP 1.6 §7.43 / 2.x SampledValueType). */
    meterValue(context) {
        const register = this.o.meterStartWh;
        if (this.o.version === '1.6') {
            return { timestamp: this.iso(), sampledValue: [
                { value: String(register), context, measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
                { value: '0', context, measurand: 'Power.Active.Import', unit: 'W' },
                { value: String(this.o.socPercent), context, measurand: 'SoC', location: 'EV', unit: 'Percent' },
            ] };
        }
        return { timestamp: this.iso(), sampledValue: [
            { value: register, context, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'Wh' } },
            { value: 0, context, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W' } },
            { value: this.o.socPercent, context, measurand: 'SoC', location: 'EV', unitOfMeasure: { unit: 'Percent' } },
        ] };
    }

    transactionEvent(eventType, triggerReason, extra) {
        const payload = {
            eventType, timestamp: this.iso(), triggerReason, seqNo: this.seqNo,
            ...extra,
        };
        this.seqNo += 1;
        return this.call('TransactionEvent', payload);
    }

    async status(status16, status2x) {
        if (this.o.version === '1.6') {
            await this.call('StatusNotification', {
                connectorId: EVSE_ID, errorCode: 'NoError', status: status16, timestamp: this.iso(),
            });
        } else {
            await this.call('StatusNotification', {
                timestamp: this.iso(), connectorStatus: status2x, evseId: EVSE_ID, connectorId: 1,
            });
        }
    }

    async boot() {
        const request = this.o.version === '1.6'
            ? { chargePointVendor: 'ocpp-rpc', chargePointModel: 'fc-third-party' }
            : { chargingStation: { vendorName: 'ocpp-rpc', model: 'fc-third-party' }, reason: 'PowerUp' };
        const answer = await this.call('BootNotification', request);
        if (answer.status !== 'Accepted') throw new Error(`BootNotification ${answer.status}`);
        this.clockOffsetMs = Date.parse(answer.currentTime) - Date.now();
    }

    async startTransaction() {
        const v = this.o.vehicleId;
        if (this.o.version === '1.6') {
            const auth = await this.call('Authorize', { idTag: v });
            if (auth.idTagInfo.status !== 'Accepted') throw new Error(`Authorize ${auth.idTagInfo.status}`);
            await this.status('Preparing');
            const startMs = this.now();
            const answer = await this.call('StartTransaction', {
                connectorId: EVSE_ID, idTag: v, meterStart: this.o.meterStartWh, timestamp: this.iso(startMs),
            });
            if (answer.idTagInfo.status !== 'Accepted') throw new Error(`StartTransaction ${answer.idTagInfo.status}`);
            this.smart.startTransaction(answer.transactionId, startMs);
            await this.status('Charging');
            return;
        }
        const idToken = { idToken: v, type: 'Central' };
        const auth = await this.call('Authorize', { idToken });
        if (auth.idTokenInfo.status !== 'Accepted') throw new Error(`Authorize ${auth.idTokenInfo.status}`);
        await this.status(null, 'Occupied');
        const id = randomUUID();  // 36 characters: the 2.x maximum
        const startMs = this.now();
        this.smart.startTransaction(id, startMs);
        const answer = await this.transactionEvent('Started', 'Authorized', {
            transactionInfo: { transactionId: id, chargingState: 'EVConnected' },
            evse: { id: EVSE_ID, connectorId: 1 },
            idToken,
            meterValue: [this.meterValue('Transaction.Begin')],
        });
        if (answer.idTokenInfo?.status !== 'Accepted') {
            throw new Error(`TransactionEvent Started ${answer.idTokenInfo?.status}`);
        }
        const needs = await this.call('NotifyEVChargingNeeds', {
            evseId: EVSE_ID,
            chargingNeeds: {
                requestedEnergyTransfer: 'AC_single_phase',
                departureTime: new Date(Date.parse(this.o.departure)).toISOString(),
                acChargingParameters: {
                    energyAmount: this.o.energyWh, evMinCurrent: 6, evMaxCurrent: 32, evMaxVoltage: this.o.voltageV,
                },
            },
        });
        if (needs.status !== 'Accepted') throw new Error(`NotifyEVChargingNeeds ${needs.status}`);
    }

    async meterValues() {
        const tx = this.smart.transaction;
        if (this.o.version === '1.6') {
            await this.call('MeterValues', {
                connectorId: EVSE_ID, transactionId: tx.id, meterValue: [this.meterValue('Sample.Periodic')],
            });
        } else {
            await this.call('MeterValues', { evseId: EVSE_ID, meterValue: [this.meterValue('Sample.Periodic')] });
        }
    }

    async stopTransaction() {
        const tx = this.smart.transaction;
        this.smart.stopTransaction();
        if (this.o.version === '1.6') {
            await this.status('Finishing');
            await this.call('StopTransaction', {
                transactionId: tx.id, idTag: this.o.vehicleId, meterStop: this.o.meterStartWh,
                timestamp: this.iso(), reason: 'EVDisconnected',
            });
        } else {
            await this.transactionEvent('Ended', 'EVDeparted', {
                transactionInfo: { transactionId: tx.id, chargingState: 'Idle', stoppedReason: 'EVDisconnected' },
                meterValue: [this.meterValue('Transaction.End')],
            });
        }
        await this.status('Available', 'Available');
        return tx.id;
    }

    async run() {
        await this.client.connect();
        await this.boot();
        await this.call('Heartbeat', {});
        await this.status('Available', 'Available');
        await this.waitFor(() => this.smart.has('TxDefaultProfile') && this.smart.has(MAX_PURPOSE[this.o.version]),
                           'a TxDefaultProfile and a station max profile');
        await this.startTransaction();
        await this.meterValues();
        await this.waitFor(() => this.txProfileAccepted, 'a TxProfile for the transaction');
        await this.waitFor(() => this.compositeRequests > 0, 'GetCompositeSchedule');
        return this.stopTransaction();
    }
}

async function main() {
    const options = parseCommandLine(process.argv.slice(2));
    const cp = new ChargePoint(options);
    let transactionId = null;
    let error = null;
    try {
        transactionId = await cp.run();
    } catch (e) {
        error = e.message;
    }
    await cp.client.close({ code: 1000, awaitPending: true }).catch(() => {});
    const ok = error === null && !cp.callErrors.length && !cp.strictFailures.length && !cp.badMessages.length;
    process.stdout.write(JSON.stringify({
        ok, error, version: options.version, subprotocol: cp.client.protocol ?? null,
        identity: options.identity, transactionId, clockOffsetMs: cp.clockOffsetMs,
        received: cp.received, sent: cp.sent, callErrors: cp.callErrors,
        strictValidationFailures: cp.strictFailures, badMessages: cp.badMessages,
    }) + '\n');
    process.exitCode = ok ? 0 : 1;
}

main();
