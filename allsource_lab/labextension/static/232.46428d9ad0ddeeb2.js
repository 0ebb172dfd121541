"use strict";(self.rspackChunkallsource_lab_extension=self.rspackChunkallsource_lab_extension||[]).push([[232],{475(o,r,a){var e=a(601),t=a.n(e),l=a(314),n=(a.n(l))()(t());n.push([o.id,`/*
 * AllSource Lab documents. Colors come from JupyterLab's theme variables so the
 * outputs follow the light and dark themes; the only fixed colors are the categorical
 * palette of the marks (src/palette.ts), chosen to read on both.
 */

.asl-root {
  font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size1);
  color: var(--jp-content-font-color1);
  line-height: 1.45;
  max-width: 100%;
  overflow-x: auto;
}

.asl-root code,
.asl-root pre,
.asl-json,
.asl-tooltip {
  font-family: var(--jp-code-font-family);
  font-size: var(--jp-code-font-size);
}

.asl-header {
  display: flex;
  flex-wrap: wrap;
  align-items: center;
  gap: 4px;
  margin: 2px 0 6px;
}

.asl-toolbar {
  display: flex;
  align-items: center;
  gap: 6px;
}

.asl-spacer {
  flex: 1;
}

.asl-muted,
.asl-note,
.asl-store-line,
.asl-footer {
  color: var(--jp-content-font-color2);
}

.asl-note {
  font-size: var(--jp-ui-font-size0);
  margin: 4px 0;
}

.asl-store-line,
.asl-footer {
  font-size: var(--jp-ui-font-size0);
  margin-top: 4px;
}

.asl-chip {
  display: inline-block;
  padding: 0 6px;
  border-radius: 8px;
  background: var(--jp-layout-color2);
  color: var(--jp-content-font-color1);
  font-size: var(--jp-ui-font-size0);
}

.asl-chip.asl-good {
  background: var(--jp-success-color3);
  color: var(--jp-success-color0);
}

.asl-chip.asl-bad {
  background: var(--jp-error-color3);
  color: var(--jp-error-color0);
}

.asl-button {
  font: inherit;
  font-size: var(--jp-ui-font-size0);
  padding: 1px 8px;
  border: 1px solid var(--jp-border-color1);
  border-radius: 3px;
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  cursor: pointer;
}

.asl-button:hover {
  background: var(--jp-layout-color2);
}

.asl-root [hidden] {
  display: none !important;
}

/* Tables */

.asl-table-wrap {
  max-height: 480px;
  overflow: auto;
}

.asl-table {
  border-collapse: collapse;
  font-size: var(--jp-ui-font-size1);
}

.asl-table th,
.asl-table td {
  padding: 2px 10px 2px 6px;
  text-align: left;
  vertical-align: top;
  border-bottom: 1px solid var(--jp-border-color2);
  white-space: nowrap;
}

.asl-table th {
  position: sticky;
  top: 0;
  background: var(--jp-layout-color1);
  font-weight: 600;
  border-bottom: 1px solid var(--jp-border-color1);
}

.asl-table tbody tr:hover {
  background: var(--jp-layout-color2);
}

.asl-table .asl-num {
  text-align: right;
  font-variant-numeric: tabular-nums;
}

.asl-table .asl-null {
  color: var(--jp-content-font-color3);
}

.asl-table .asl-type-uuid {
  max-width: 10em;
  overflow: hidden;
  text-overflow: ellipsis;
}

.asl-json-cell details > summary {
  cursor: pointer;
}

.asl-json-cell pre {
  margin: 2px 0;
  white-space: pre-wrap;
}

/* JSON trees */

.asl-json {
  margin: 2px 0;
}

.asl-json-children {
  padding-left: 16px;
  border-left: 1px dotted var(--jp-border-color2);
  margin-left: 3px;
}

.asl-json-row {
  white-space: pre-wrap;
  word-break: break-word;
  padding: 0 4px;
  border-radius: 2px;
}

.asl-json-node > summary {
  cursor: pointer;
  list-style-position: outside;
}

.asl-json-key {
  color: var(--jp-mirror-editor-property-color, var(--jp-content-font-color1));
}

.asl-json-string {
  color: var(--jp-mirror-editor-string-color, var(--jp-content-font-color1));
}

.asl-json-number {
  color: var(--jp-mirror-editor-number-color, var(--jp-content-font-color1));
}

.asl-json-boolean,
.asl-json-null {
  color: var(--jp-mirror-editor-keyword-color, var(--jp-content-font-color1));
}

.asl-json-summary,
.asl-json-index {
  color: var(--jp-content-font-color2);
}

/* Diff highlights: a colored background and a marker, not color alone. The background is
   a tint of the theme's color1 over the page, not its color3: color3 is pale in both
   themes, and under the dark theme's light text it was unreadable. */

.asl-diff-marker {
  display: inline-block;
  width: 1em;
  font-weight: 700;
}

.asl-diff-added,
.asl-diff-added > summary {
  background: color-mix(in srgb, var(--jp-success-color1) 22%, transparent);
}

.asl-diff-added .asl-diff-marker {
  color: var(--jp-success-color0);
}

.asl-diff-changed,
.asl-diff-changed > summary {
  background: color-mix(in srgb, var(--jp-warn-color1) 22%, transparent);
}

.asl-diff-changed .asl-diff-marker {
  color: var(--jp-warn-color0);
}

.asl-diff-removed,
.asl-diff-removed > summary {
  background: color-mix(in srgb, var(--jp-error-color1) 22%, transparent);
  text-decoration: line-through;
}

.asl-diff-removed .asl-diff-marker {
  color: var(--jp-error-color0);
  text-decoration: none;
}

/* On a dark theme the markers take the lighter shades: color0 is dark in both themes. */
body[data-jp-theme-light='false'] .asl-diff-added .asl-diff-marker {
  color: var(--jp-success-color2);
}

body[data-jp-theme-light='false'] .asl-diff-changed .asl-diff-marker {
  color: var(--jp-warn-color2);
}

body[data-jp-theme-light='false'] .asl-diff-removed .asl-diff-marker {
  color: var(--jp-error-color2);
}

/* Timeline */

.asl-legend {
  display: flex;
  flex-wrap: wrap;
  gap: 4px 12px;
  margin: 2px 0 4px;
  font-size: var(--jp-ui-font-size0);
}

.asl-legend-item {
  display: inline-flex;
  align-items: center;
  gap: 4px;
}

.asl-swatch {
  display: inline-block;
  width: 10px;
  height: 10px;
  border-radius: 50%;
  margin-right: 4px;
}

.asl-timeline {
  position: relative;
  max-width: 960px;
}

.asl-timeline svg,
.asl-window-chart svg {
  display: block;
  font-family: var(--jp-ui-font-family);
  font-size: 11px;
}

.asl-lane {
  fill: var(--jp-layout-color0);
}

.asl-lane-odd {
  fill: var(--jp-layout-color2);
}

.asl-lane-label,
.asl-axis text {
  fill: var(--jp-content-font-color2);
}

.asl-axis line {
  stroke: var(--jp-border-color1);
}

.asl-axis .asl-grid {
  stroke: var(--jp-border-color2);
  stroke-dasharray: 2 3;
}

.asl-mark {
  stroke: var(--jp-layout-color0);
  stroke-width: 1;
  cursor: pointer;
}

.asl-mark:hover,
.asl-mark.asl-selected {
  stroke: var(--jp-content-font-color0);
  stroke-width: 2;
}

/* The keyboard's focus: a thick ring in the theme's brand color (outline is not drawn
   around SVG shapes in every browser, so the stroke is the ring). */
.asl-mark:focus {
  outline: none;
}

.asl-mark:focus-visible {
  stroke: var(--jp-brand-color1);
  stroke-width: 3;
}

.asl-axis .asl-axis-date,
.asl-axis .asl-axis-zone {
  fill: var(--jp-content-font-color1);
  font-weight: 600;
}

.asl-more-lanes {
  font-size: var(--jp-ui-font-size0);
  color: var(--jp-content-font-color2);
}

.asl-tooltip {
  position: absolute;
  z-index: 10;
  max-width: 280px;
  padding: 4px 6px;
  white-space: pre-wrap;
  word-break: break-word;
  pointer-events: none;
  background: var(--jp-layout-color0);
  color: var(--jp-content-font-color1);
  border: 1px solid var(--jp-border-color1);
  border-radius: 3px;
  box-shadow: var(--jp-elevation-z4);
}

.asl-pinned {
  margin-top: 6px;
  padding: 6px 8px;
  border: 1px solid var(--jp-border-color1);
  border-left: 3px solid var(--jp-brand-color1);
  border-radius: 3px;
  background: var(--jp-layout-color1);
  max-width: 960px;
}

.asl-pinned-head {
  display: flex;
  align-items: center;
  gap: 4px;
}

.asl-pinned-head .asl-close {
  margin-left: auto;
}

.asl-pinned h4 {
  margin: 6px 0 2px;
  font-size: var(--jp-ui-font-size1);
  font-weight: 600;
}

.asl-fields {
  display: grid;
  grid-template-columns: max-content 1fr;
  gap: 0 12px;
  margin: 4px 0;
}

.asl-fields dt {
  color: var(--jp-content-font-color2);
}

.asl-fields dd {
  margin: 0;
}

/* Window chart */

.asl-window-chart {
  max-width: 720px;
}

.asl-bar {
  fill: var(--jp-brand-color1);
}

.asl-bar:hover {
  fill: var(--jp-brand-color0);
}

.asl-line {
  stroke-width: 2;
}

.asl-window-select {
  font: inherit;
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  border: 1px solid var(--jp-border-color1);
}

/* Reports and cards */

.asl-kv {
  display: grid;
  grid-template-columns: max-content auto;
  gap: 1px 16px;
  margin: 2px 0;
  justify-content: start;
}

.asl-kv dt {
  color: var(--jp-content-font-color2);
}

.asl-kv dd {
  margin: 0;
}

.asl-kv .asl-num {
  font-variant-numeric: tabular-nums;
}

.asl-kv-nested {
  padding-left: 8px;
  border-left: 2px solid var(--jp-border-color2);
}

.asl-list {
  margin: 0;
  padding-left: 1.2em;
}

.asl-badge {
  display: inline-block;
  padding: 1px 8px;
  border-radius: 3px;
  font-weight: 600;
  font-size: var(--jp-ui-font-size0);
}

.asl-badge.asl-ok {
  background: var(--jp-success-color1);
  color: var(--jp-ui-inverse-font-color0);
}

.asl-badge.asl-bad {
  background: var(--jp-error-color1);
  color: var(--jp-ui-inverse-font-color0);
}

.asl-problems {
  margin: 4px 0;
  padding-left: 1.6em;
}

.asl-problem {
  padding: 2px 6px;
  margin: 2px 0;
  /* A tint, like the diff highlights: color3 is pale under the dark theme's light text. */
  background: color-mix(in srgb, var(--jp-error-color1) 18%, transparent);
  color: var(--jp-content-font-color0);
  border-left: 3px solid var(--jp-error-color1);
}

.asl-problem-file {
  font-weight: 600;
}

.asl-problem-offset {
  font-family: var(--jp-code-font-family);
  font-weight: 600;
}

.asl-card {
  padding: 2px 0;
}

.asl-query {
  margin: 2px 0 6px;
  padding: 4px 6px;
  background: var(--jp-layout-color2);
  white-space: pre-wrap;
}

.asl-progress {
  display: flex;
  align-items: center;
  gap: 8px;
}

.asl-progress progress {
  width: 240px;
  accent-color: var(--jp-brand-color1);
}

.asl-fallback {
  /* The HTML fallback brings its own layout. */
  display: block;
}

/* Under a window chart drawn from a cut table: says which windows it shows. */
.asl-window-note {
  font-size: var(--jp-ui-font-size0);
  color: var(--jp-ui-font-color2);
  margin: 2px 0 6px;
}
`,""]),a.d(r,{},{A:n})},314(o){o.exports=function(o){var r=[];return r.toString=function(){return this.map(function(r){var a="",e=void 0!==r[5];return r[4]&&(a+="@supports (".concat(r[4],") {")),r[2]&&(a+="@media ".concat(r[2]," {")),e&&(a+="@layer".concat(r[5].length>0?" ".concat(r[5]):""," {")),a+=o(r),e&&(a+="}"),r[2]&&(a+="}"),r[4]&&(a+="}"),a}).join("")},r.i=function(o,a,e,t,l){"string"==typeof o&&(o=[[null,o,void 0]]);var n={};if(e)for(var s=0;s<this.length;s++){var i=this[s][0];null!=i&&(n[i]=!0)}for(var p=0;p<o.length;p++){var c=[].concat(o[p]);e&&n[c[0]]||(void 0!==l&&(void 0===c[5]||(c[1]="@layer".concat(c[5].length>0?" ".concat(c[5]):""," {").concat(c[1],"}")),c[5]=l),a&&(c[2]&&(c[1]="@media ".concat(c[2]," {").concat(c[1],"}")),c[2]=a),t&&(c[4]?(c[1]="@supports (".concat(c[4],") {").concat(c[1],"}"),c[4]=t):c[4]="".concat(t)),r.push(c))}},r}},601(o){o.exports=function(o){return o[1]}},72(o){var r=[];function a(o){for(var a=-1,e=0;e<r.length;e++)if(r[e].identifier===o){a=e;break}return a}function e(o,e){for(var t={},l=[],n=0;n<o.length;n++){var s=o[n],i=e.base?s[0]+e.base:s[0],p=t[i]||0,c="".concat(i," ").concat(p);t[i]=p+1;var d=a(c),f={css:s[1],media:s[2],sourceMap:s[3],supports:s[4],layer:s[5]};if(-1!==d)r[d].references++,r[d].updater(f);else{var u=function(o,r){var a=r.domAPI(r);return a.update(o),function(r){r?(r.css!==o.css||r.media!==o.media||r.sourceMap!==o.sourceMap||r.supports!==o.supports||r.layer!==o.layer)&&a.update(o=r):a.remove()}}(f,e);e.byIndex=n,r.splice(n,0,{identifier:c,updater:u,references:1})}l.push(c)}return l}o.exports=function(o,t){var l=e(o=o||[],t=t||{});return function(o){o=o||[];for(var n=0;n<l.length;n++){var s=a(l[n]);r[s].references--}for(var i=e(o,t),p=0;p<l.length;p++){var c=a(l[p]);0===r[c].references&&(r[c].updater(),r.splice(c,1))}l=i}}},659(o){var r={};o.exports=function(o,a){var e=function(o){if(void 0===r[o]){var a=document.querySelector(o);if(window.HTMLIFrameElement&&a instanceof window.HTMLIFrameElement)try{a=a.contentDocument.head}catch(o){a=null}r[o]=a}return r[o]}(o);if(!e)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");e.appendChild(a)}},540(o){o.exports=function(o){var r=document.createElement("style");return o.setAttributes(r,o.attributes),o.insert(r,o.options),r}},56(o,r,a){o.exports=function(o){var r=a.nc;r&&o.setAttribute("nonce",r)}},825(o){o.exports=function(o){if("u"<typeof document)return{update:function(){},remove:function(){}};var r=o.insertStyleElement(o);return{update:function(a){var e,t,l;e="",a.supports&&(e+="@supports (".concat(a.supports,") {")),a.media&&(e+="@media ".concat(a.media," {")),(t=void 0!==a.layer)&&(e+="@layer".concat(a.layer.length>0?" ".concat(a.layer):""," {")),e+=a.css,t&&(e+="}"),a.media&&(e+="}"),a.supports&&(e+="}"),(l=a.sourceMap)&&"u">typeof btoa&&(e+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(l))))," */")),o.styleTagTransform(e,r,o.options)},remove:function(){var o;null===(o=r).parentNode||o.parentNode.removeChild(o)}}}},113(o){o.exports=function(o,r){if(r.styleSheet)r.styleSheet.cssText=o;else{for(;r.firstChild;)r.removeChild(r.firstChild);r.appendChild(document.createTextNode(o))}}},579(o,r,a){var e=a(72),t=a.n(e),l=a(825),n=a.n(l),s=a(659),i=a.n(s),p=a(56),c=a.n(p),d=a(540),f=a.n(d),u=a(113),m=a.n(u),v=a(475),h={};h.styleTagTransform=m(),h.setAttributes=c(),h.insert=i().bind(null,"head"),h.domAPI=n(),h.insertStyleElement=f(),t()(v.A,h),v.A&&v.A.locals&&v.A.locals}}]);