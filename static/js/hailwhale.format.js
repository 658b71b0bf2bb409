/*! hailwhale.format.js: numbers, times, periods and ranges written as people read them. */
/*
 * Pure functions, shared by the graph's pieces (hailwhale.widget.js and the modules
 * it uses) and the dashboard, as $.hailwhale.text. Needs jQuery and
 * hailwhale.client.js only.
 */
(function ($) {
    'use strict';

    if (!$ || !$.hailwhale || !$.hailwhale.Client) {
        throw new Error('hailwhale.format.js needs jQuery and hailwhale.client.js on the page first');
    }

    // Graphite-style units, as the server spells periods (DESIGN.md, "Periods").
    var UNIT_SECONDS = {s: 1, m: 60, h: 3600, d: 86400, w: 604800, mo: 2592000, y: 31536000};
    // Spans in words: days up to a year (30 d, not 1 mo; 7 d, not 1 w).
    var UNIT_WORDS = [[31536000, 'y'], [86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']];

    function trimZeros(text) {
        return text.indexOf('.') < 0 ? text : text.replace(/\.?0+$/, '');
    }

    /** A short axis label: 1.25k, 3M, 0.5. */
    function compact(value) {
        var size = Math.abs(value);
        var units = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'k']];
        for (var i = 0; i < units.length; i++) {
            if (size >= units[i][0]) {
                return trimZeros((value / units[i][0]).toFixed(2)) + units[i][1];
            }
        }
        if (size === 0) {
            return '0';
        }
        return size >= 1 ? trimZeros(value.toFixed(2)) : trimZeros(value.toPrecision(3));
    }

    /** A value in full, grouped: 12,345.5; null (no value) is a dash. */
    function exact(value) {
        return value == null ? '–'
            : Number(value).toLocaleString(undefined, {maximumFractionDigits: 6});
    }

    /** Seconds as the largest whole unit: 15 s, 1 h, 7 d. */
    function duration(seconds) {
        for (var i = 0; i < UNIT_WORDS.length; i++) {
            var unit = UNIT_WORDS[i];
            if (seconds >= unit[0] && seconds % unit[0] === 0) {
                return seconds / unit[0] + ' ' + unit[1];
            }
        }
        return seconds + ' s';
    }

    /** Milliseconds as the largest whole unit. */
    function span(ms) {
        return ms % 1000 === 0 ? duration(ms / 1000) : ms + ' ms';
    }

    /** Seconds in `15s`, `6h`, `1mo` (or a bare number of seconds); NaN when not one. */
    function seconds(text) {
        var match = /^(\d+)(s|m|h|d|w|mo|y)?$/.exec(String(text).trim());
        return match ? +match[1] * UNIT_SECONDS[match[2] || 's'] : NaN;
    }

    /** A period's [interval, length] in seconds: `15s:3h`, or the legacy `15x10800`. */
    function period(name) {
        var parts = String(name || '').split(/[:x]/);
        return parts.length === 2 ? [seconds(parts[0]), seconds(parts[1])] : [NaN, NaN];
    }

    /** `15s:3h` as `last 3 h, 15 s buckets`. */
    function periodLabel(name) {
        var parts = period(name);
        if (isNaN(parts[0]) || isNaN(parts[1])) {
            return name;
        }
        return 'last ' + duration(parts[1]) + ', ' + duration(parts[0]) + ' buckets';
    }

    /** A bucket's start in the viewer's local time, as fine as the bucket. */
    function bucketTime(ms, step) {
        var parts = {month: 'short', day: 'numeric', hourCycle: 'h23'};
        if (step < 86400000) {
            parts.hour = '2-digit';
            parts.minute = '2-digit';
        } else {
            parts.year = 'numeric';
        }
        if (step < 60000) {
            parts.second = '2-digit';
        }
        return new Date(ms).toLocaleString(undefined, parts);
    }

    /** A round axis end a little beyond `value`, on a step of at least `least`. */
    function roundUp(value, least) {
        if (value <= 0) {
            return 0;
        }
        value *= 1.05;  // headroom: the highest point does not touch the frame
        var rough = value / 5;
        var magnitude = Math.pow(10, Math.floor(Math.log(rough) / Math.LN10));
        var steps = [1, 2, 2.5, 5, 10];
        for (var i = 0; i < steps.length - 1 && rough > steps[i] * magnitude; i++) {
            // the first round step that fits five ticks
        }
        var step = Math.max(steps[i] * magnitude, least || 0);
        return Math.ceil(value / step - 1e-9) * step;
    }

    $.hailwhale.text = {
        compact: compact, exact: exact, duration: duration, span: span, seconds: seconds,
        period: period, periodLabel: periodLabel, bucketTime: bucketTime, roundUp: roundUp
    };
    $.hailwhale.format = compact;  // the widget's axis labels, as before the split
}(window.jQuery));
