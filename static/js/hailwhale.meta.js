/*! hailwhale.meta.js: what /meta says about the metrics a graph asks for: unknown names, unique ones. */
/*
 * /meta?pk= lists a category's metrics, each "sum" or "unique", and the configured
 * periods. The graph uses it to name an unknown metric (rather than draw flat
 * zeros) and to refuse to stack unique counts, which do not add up across
 * children. Needs jQuery and hailwhale.client.js.
 */
(function ($) {
    'use strict';

    if (!$ || !$.hailwhale || !$.hailwhale.Client) {
        throw new Error('hailwhale.meta.js needs jQuery and hailwhale.client.js on the page first');
    }

    // A formula's tokens as the server reads them (hailwhale/formulas.py): a number
    // first, so the `e5` of `1e5` is no name.
    var TOKEN = /((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)|([A-Za-z_][A-Za-z0-9_.]*)/g;
    var ALWAYS = 'hits';  // every event adds it: known even before /meta lists it

    /** The metric names a metric or formula uses, each once. */
    function namesIn(metric) {
        var names = [];
        var match;
        TOKEN.lastIndex = 0;
        while ((match = TOKEN.exec(String(metric))) !== null) {
            if (match[2] && names.indexOf(match[2]) < 0) {
                names.push(match[2]);
            }
        }
        return names;
    }

    /** What /meta knows of one category: its metrics' kinds and the periods. */
    function Known(answer) {
        this.kinds = (answer && answer.metrics) || {};
        this.periods = (answer && answer.periods) || [];
    }

    /** The category's metric names, sorted, `hits` among them. */
    Known.prototype.names = function () {
        var names = Object.keys(this.kinds);
        if (names.indexOf(ALWAYS) < 0) {
            names.push(ALWAYS);
        }
        return names.sort();
    };

    /** Why `metric` cannot be drawn, in one sentence, or null. A category where nothing
     * was counted yet knows no metric at all: nothing to tell then. */
    Known.prototype.unknown = function (metric) {
        if (!Object.keys(this.kinds).length) {
            return null;
        }
        var kinds = this.kinds;
        var missing = namesIn(metric).filter(function (name) {
            return name !== ALWAYS && !kinds.hasOwnProperty(name);
        });
        if (!missing.length) {
            return null;
        }
        return 'no metric ' + missing.map(function (name) { return '`' + name + '`'; })
            .join(', ') + ' in this category; known: ' + this.names().join(', ');
    };

    /** Why `metric` is not stacked, or null when it may be: unique counts do not add up. */
    Known.prototype.unstackable = function (metric) {
        var kinds = this.kinds;
        var unique = namesIn(metric).filter(function (name) { return kinds[name] === 'unique'; });
        if (!unique.length) {
            return null;
        }
        return 'Not stacked: ' + unique.join(', ') + (unique.length > 1 ? ' count' : ' counts') +
            ' distinct ids, which do not add up across children (one id seen under two ' +
            'children counts in both).';
    };

    var cache = {};  // server url + pk -> a promise of Known

    /** What /meta says of `pk` (cached per server and pk; `fresh` asks again). Never
     * fails: a server without /meta knows nothing, and the graph draws unchecked. */
    function known(client, pk, fresh) {
        var name = client.url + ' ' + JSON.stringify(pk == null ? '' : pk);
        if (!cache[name] || fresh) {
            var params = pk == null || pk === '' ? {} : {pk: $.isArray(pk) ? $.hailwhale.dimKey(pk) : pk};
            cache[name] = client.meta(params).then(function (answer) {
                return new Known(answer);
            }, function () {
                delete cache[name];
                return $.Deferred().resolve(new Known(null)).promise();
            });
        }
        return cache[name];
    }

    $.hailwhale.meta = {namesIn: namesIn, known: known, Known: Known};
}(window.jQuery));
