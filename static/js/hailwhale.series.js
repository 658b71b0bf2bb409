/*! hailwhale.series.js: the server's answers as the entries a graph draws: levels, labels, colours. */
/*
 * An entry is one series, in the server's order (the parent first, then each child
 * followed by its own): {key, path, level, label, color, points: {metric: [[ms,
 * value], ...]}}. A child keeps its colour from one draw to the next. The previous
 * window, to compare, becomes an entry drawn over this one, bucket by bucket.
 * Needs jQuery and hailwhale.format.js.
 */
(function ($) {
    'use strict';

    if (!$ || !$.hailwhale || !$.hailwhale.text) {
        throw new Error('hailwhale.series.js needs jQuery and hailwhale.format.js on the page first');
    }

    // Children's colours: none close to the parent's (dark blue, or light in dark mode).
    var COLORS = ['#f28e2b', '#59a14f', '#e15759', '#4e79a7', '#b07aa1', '#76b7b2', '#edc948',
                  '#ff9da7', '#9c755f', '#8cd17d', '#bab0ac'];

    /** Colours for one graph's series: `palette` is [parent, child, ...] or null (ours). */
    function Colors() {
        this.children = {};
    }

    Colors.prototype.reset = function () {
        this.children = {};
    };

    Colors.prototype.of = function (entry, palette, parent) {
        if (entry.level === 0) {
            return palette ? palette[0] : parent;
        }
        var choices = palette ? palette.slice(1) : COLORS;
        if (!this.children[entry.key]) {
            this.children[entry.key] = choices[Object.keys(this.children).length %
                                               Math.max(1, choices.length)];
        }
        return this.children[entry.key];
    };

    /** Entries of `series`, [[dim_key, {metric: points}, path], ...] as the client gives
     * them; `colorOf(entry)` colours each. */
    function entries(series, colorOf) {
        var parent = series.length ? series[0][2] : [];
        return $.map(series, function (one) {
            var path = one[2];
            var level = path.length - parent.length;
            var entry = {key: one[0], path: path, level: level, points: one[1] || {},
                         label: level === 0 ? (path.length ? path.join(' › ') : 'overall')
                                            : path.slice(parent.length).join(' › ')};
            entry.color = colorOf(entry);
            return [entry];
        });
    }

    /** The parent's previous window (its /plotpoints series) as an entry over `current`,
     * the parent's entry: bucket i of one over bucket i of the other. */
    function previous(series, current, metric, color) {
        var now = current.points[metric] || [];
        var then = series[1][metric] || [];
        var shift = now.length && then.length ? now[0][0] - then[0][0] : 0;
        var last = now.length ? now[now.length - 1][0] : 0;
        var shifted = {};
        $.each(series[1], function (name, points) {
            shifted[name] = $.map(points, function (p) {
                return p[0] + shift <= last ? [[p[0] + shift, p[1]]] : null;
            });
        });
        return {key: series[0] + ' (previous)', path: series[2], level: 0, previous: true,
                label: 'previous ' + $.hailwhale.text.duration(shift / 1000), color: color,
                points: shifted};
    }

    /** /totals rows of one period as {dim_key: {metric: total}}. */
    function totals(periods) {
        var byKey = {};
        $.each(periods.length ? periods[0][1] : [], function (i, row) {
            byKey[row[0]] = row[1];
        });
        return byKey;
    }

    $.hailwhale.Colors = Colors;
    $.hailwhale.series = {entries: entries, previous: previous, totals: totals};
}(window.jQuery));
