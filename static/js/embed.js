/*
 * Served as /graph.js (whale/pages.py fills in the options from its query string,
 * as {"options": {...}}):
 *   <script src="http://hailwhale:8085/graph.js?dimension=sales&metric=dollars&depth=1&live=1"></script>
 * inserts a live graph where the script tag stands, on any page of any origin.
 * It takes the plugin's options (whale/pages.py lists them): a time range
 * (`range=6h`, or `from`/`to`), several metrics (`metric=dollars,visitors`: one
 * graph each), `zoom=0`, `log=1`, `compare=1`, `toolbar=0`. jQuery, flot and the
 * plugin (which brings its own pieces) come from the HailWhale server only when
 * the page lacks them, each loaded once however many graphs the page embeds.
 */
(function (embed) {
    'use strict';

    function findScript() {
        // Browsers without document.currentScript: the last graph.js tag not yet handled.
        var tags = document.getElementsByTagName('script');
        for (var i = tags.length - 1; i >= 0; i--) {
            if (/\/graph\.js(\?|#|$)/.test(tags[i].src) && !tags[i].hailwhaleEmbedded) {
                return tags[i];
            }
        }
        return null;
    }

    var script = document.currentScript || findScript();
    if (!script || !script.parentNode) {
        return;
    }
    script.hailwhaleEmbedded = true;
    // The server is where the browser fetched this script from: the server itself does
    // not say (a Host or X-Forwarded-* header it would go by is the client's to forge).
    // A proxy that renamed graph.js: the folder the script came from.
    var src = (script.src || '').replace(/[?#].*$/, '');
    var match = /^(.*)\/graph\.js$/.exec(src) || /^(.*)\/[^\/]*$/.exec(src);
    if (!match) {
        return;
    }
    var base = match[1];

    var holder = document.createElement('div');
    holder.className = 'hailwhale-embed';
    script.parentNode.insertBefore(holder, script);

    var loader = window.HailWhaleEmbed || (window.HailWhaleEmbed = {loading: {}});

    function failed(src) {
        holder.style.cssText = 'padding:8px;border:1px solid #e3a1a1;color:#9b1c1c;' +
            'background:#fff5f5;font:13px sans-serif';
        holder.textContent = 'HailWhale graph: could not load ' + src;
    }

    function ensure(present, src, then) {
        if (present()) {
            then();
            return;
        }
        var waiting = loader.loading[src];
        if (!waiting) {
            waiting = loader.loading[src] = {done: [], failed: []};
            var hadDollar = window.$;
            var tag = document.createElement('script');
            tag.src = src;
            tag.onload = function () {
                delete loader.loading[src];
                if (hadDollar !== undefined && window.jQuery && window.$ === window.jQuery &&
                        hadDollar !== window.jQuery) {
                    window.jQuery.noConflict();  // give the page its own $ back
                }
                for (var i = 0; i < waiting.done.length; i++) {
                    waiting.done[i]();
                }
            };
            tag.onerror = function () {
                delete loader.loading[src];
                for (var i = 0; i < waiting.failed.length; i++) {
                    waiting.failed[i]();
                }
            };
            (document.head || document.documentElement).appendChild(tag);
        }
        waiting.done.push(then);
        waiting.failed.push(function () { failed(src); });
    }

    ensure(function () { return window.jQuery; }, base + '/static/vendor/jquery/jquery.min.js',
        function () {
            ensure(function () { return window.jQuery.plot; },
                base + '/static/vendor/flot/jquery.flot.js', function () {
                    ensure(function () { return window.jQuery.fn.hailwhale; },
                        base + '/static/js/jquery.hailwhale.js', function () {
                            var options = window.jQuery.extend({url: base}, embed.options);
                            window.jQuery(holder).hailwhale(options);
                        });
                });
        });
}(__HAILWHALE_EMBED__));
