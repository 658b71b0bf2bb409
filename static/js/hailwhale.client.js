/*! hailwhale.client.js: HailWhale's HTTP client ($.hailwhale(url[, key])): query URLs, the read key, count(). */
/*
 *   $.hailwhale('http://localhost:8085').count({dimensions: {sales: 'p42'},
 *                                               metrics: {dollars: 500}});
 *
 * Needs jQuery (1.9+) only: a page that just counts loads this file alone.
 * graphParams() turns the plugin's options into /plotpoints parameters.
 * series() and rows() ask for the answers as lists (`format=series`): each series
 * with its dim_key and its path, in the server's order (it ranks children: largest
 * first, ties by name), so nothing is re-sorted or re-parsed here.
 */
(function ($) {
    'use strict';

    if (!$) {
        throw new Error('hailwhale.client.js needs jQuery on the page first');
    }

    // -- dimension paths and dim_keys: the server's spelling (DESIGN.md, "dim_key") --

    /** The dim_key of a path: `_` for overall, the segment alone, or the compact JSON list. */
    function dimKey(path) {
        if (!path.length) {
            return '_';
        }
        if (path.length === 1 && '[{"'.indexOf(path[0].charAt(0)) < 0) {
            return path[0];
        }
        return JSON.stringify(path);
    }

    /** The path of a dimension given as an array, a name, a JSON list or a dim_key (a URL's). */
    function toPath(dimension) {
        if (dimension == null || dimension === '' || dimension === '_') {
            return [];
        }
        if ($.isArray(dimension)) {
            return $.map(dimension, String);
        }
        var text = String(dimension);
        if (text.charAt(0) === '[' || text.charAt(0) === '"') {
            try {
                var parsed = JSON.parse(text);
                return $.isArray(parsed) ? $.map(parsed, String) : [String(parsed)];
            } catch (ignored) {
                return [text];
            }
        }
        return [text];
    }

    /** A `pk` or `dimensions` parameter: arrays spelled as dim_keys, text as given. */
    function pathParam(value) {
        if ($.isArray(value)) {
            return value.length ? dimKey($.map(value, String)) : undefined;
        }
        return value == null || value === '' ? undefined : String(value);
    }

    /** The metrics or formulas `options` ask for, as a list: `metric` (or `metrics`) is
     * a name, a formula, an array, a JSON list, or several separated by commas (no name
     * or formula holds one). */
    function metricsOf(options) {
        var given = options.metrics || options.metric || 'hits';
        if (typeof given === 'string' && given.charAt(0) === '[') {
            try {
                given = JSON.parse(given);
            } catch (ignored) {
                return [given];  // the server names what is wrong with it
            }
        }
        var list = $.isArray(given) ? given : String(given).split(',');
        list = $.map(list, function (one) { return $.trim(String(one)) || null; });
        return list.length ? list : ['hits'];
    }

    /** Whether `metric` is a plain name rather than a formula. */
    function isName(metric) {
        return /^[A-Za-z_][A-Za-z0-9_.]*$/.test(metric);
    }

    /** The metric that ranks children: `sort` (its leading `-` the server ignores), or the
     * first of `metrics`. */
    function sortMetric(options, metrics) {
        return options.sort ? String(options.sort).replace(/^-/, '') : metrics[0];
    }

    /** /plotpoints parameters from the plugin's options: `range: '6h'` is `from=-6h`. */
    function graphParams(options) {
        var metrics = metricsOf(options);
        var range = options.range ? String(options.range).replace(/^-/, '') : null;
        var params = {
            pk: pathParam(options.pk),
            dimensions: pathParam(options.dimension),
            metrics: metrics.length === 1 ? metrics[0] : JSON.stringify(metrics),
            period: options.period || undefined,
            from: range ? '-' + range : (options.from == null ? undefined : options.from),
            to: range || options.to == null ? undefined : options.to,
            depth: options.depth || undefined,
            threshold: options.threshold == null ? undefined : options.threshold,
            limit: options.limit == null ? undefined : options.limit,
            sort: options.sort || undefined,
            // A ratio has no value where its denominator's bucket is empty: a gap, not 0.
            empty: metrics.every(isName) ? undefined : 'null'
        };
        $.each(params, function (name, value) {
            if (value === undefined || value === '') {
                delete params[name];
            }
        });
        return params;
    }

    /** `format=series` answers as [[dim_key, values, path], ...], in the server's order. */
    function entries(series, values) {
        return $.map(series, function (one) { return [[one.key, one[values], one.path]]; });
    }

    // -- the client ----------------------------------------------------------------

    /** A client of the server at `url`; `key` (read or write key) goes in a header. */
    function Client(url, key) {
        this.url = String(url || '').replace(/\/+$/, '');
        this.key = key || null;
    }

    Client.prototype.get = function (path, params, dataType) {
        return $.ajax({
            url: this.url + path, data: params || {}, dataType: dataType || 'json',
            cache: false, traditional: true,
            headers: this.key ? {'X-HailWhale-Key': this.key} : {},
            converters: {
                'text series': function (text) {
                    var answer = JSON.parse(text);
                    return {period: answer.period, series: entries(answer.series, 'points')};
                },
                'text rows': function (text) {
                    return $.map(JSON.parse(text).periods, function (period) {
                        return [[period.period, entries(period.series, 'totals')]];
                    });
                }
            }
        });
    };

    /** Count one event: {pk, dimensions, metrics, at}; returns the request (a promise). */
    Client.prototype.count = function (event) {
        var params = {};
        $.each(event || {}, function (name, value) {
            if (value == null) {
                return;
            }
            // JSON for everything but times: a name such as "[draft]" stays a name.
            params[name] = (name === 'at') ? String(value) : JSON.stringify(value);
        });
        return this.get('/count', params, 'text');
    };

    Client.prototype.plotpoints = function (params) { return this.get('/plotpoints', params); };
    Client.prototype.totals = function (params) { return this.get('/totals', params); };
    Client.prototype.dimensions = function (params) { return this.get('/dimensions', params); };
    Client.prototype.meta = function (params) { return this.get('/meta', params); };

    /**
     * The graph the plugin's `options` ask for (`extra` parameters over them): /plotpoints
     * as {period, series: [[dim_key, {metric: points}, path], ...]}, the parent first, then
     * each child followed by its own.
     */
    Client.prototype.series = function (options, extra) {
        return this.get('/plotpoints', $.extend(graphParams(options), extra, {format: 'series'}),
                        'series');
    };

    /** /totals as [[period, [[dim_key, {metric: total}, path], ...]], ...]. */
    Client.prototype.rows = function (params) {
        return this.get('/totals', $.extend({}, params, {format: 'series'}), 'rows');
    };

    /** A failed request in one sentence: the server's reason, or why there was no answer. */
    Client.prototype.failure = function (xhr) {
        var answer = xhr.responseJSON;
        if (!answer && xhr.responseText) {
            try {
                answer = JSON.parse(xhr.responseText);
            } catch (ignored) {
                answer = null;
            }
        }
        if (answer && answer.error) {
            return 'HTTP ' + xhr.status + ': ' + answer.error;
        }
        if (!xhr.status) {
            return 'Could not reach HailWhale at ' + (this.url || window.location.origin);
        }
        return 'HTTP ' + xhr.status + ' ' + (xhr.statusText || 'error');
    };

    /** $.hailwhale(url[, key]): a client with count(event), plotpoints, totals, dimensions, meta. */
    $.hailwhale = function (url, key) {
        return new Client(url, key);
    };
    $.hailwhale.Client = Client;
    $.hailwhale.dimKey = dimKey;
    $.hailwhale.toPath = toPath;
    $.hailwhale.metricsOf = metricsOf;
    $.hailwhale.isName = isName;
    $.hailwhale.graphParams = graphParams;
    $.hailwhale.sortMetric = sortMetric;
}(window.jQuery));
